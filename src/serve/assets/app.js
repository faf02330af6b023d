// radguard serve: the patient's page. Plain JavaScript, no framework, nothing from elsewhere.
// Text from the server is always put in with textContent, never as HTML.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  let chosen = [];   // [{file, name}]
  let jobId = null;

  function show(section) {
    for (const id of ['choose', 'working', 'result', 'failed']) $(id).hidden = id !== section;
  }
  function plural(n, one, many) { return n + ' ' + (n === 1 ? one : (many || one + 's')); }

  function setChosen(list) {
    chosen = list;
    const bytes = list.reduce((sum, f) => sum + f.file.size, 0);
    $('chosen').textContent = list.length === 0 ? 'No scans chosen yet.'
      : plural(list.length, 'file') + ' chosen (' + (bytes / 1048576).toFixed(1) + ' MB).';
    $('start').disabled = list.length === 0;
  }
  function fromInput(input) {
    setChosen(Array.from(input.files).map((f) => ({ file: f, name: f.webkitRelativePath || f.name })));
  }

  // Folders dropped on the page: walk them (readEntries answers in batches).
  function readAll(reader) {
    return new Promise((resolve, reject) => {
      const all = [];
      const next = () => reader.readEntries((batch) => {
        if (batch.length === 0) resolve(all); else { all.push(...batch); next(); }
      }, reject);
      next();
    });
  }
  async function walk(entry, out) {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      out.push({ file, name: entry.fullPath.replace(/^\/+/, '') });
    } else if (entry.isDirectory) {
      for (const child of await readAll(entry.createReader())) await walk(child, out);
    }
  }
  async function fromDrop(event) {
    event.preventDefault();
    $('drop').classList.remove('over');
    const entries = Array.from(event.dataTransfer.items || [])
      .map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry()).filter(Boolean);
    const out = [];
    if (entries.length > 0) { for (const e of entries) await walk(e, out); }
    else { for (const f of event.dataTransfer.files) out.push({ file: f, name: f.name }); }
    setChosen(out);
  }

  function upload() {
    show('working');
    $('bar').value = 0;
    $('status').textContent = 'Reading your files into radguard…';
    const form = new FormData();
    for (const c of chosen) form.append('files', c.file, c.name);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/jobs');
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) {
        $('bar').value = Math.round(20 * e.loaded / e.total);
        $('status').textContent = 'Reading your files into radguard: ' +
          Math.round(100 * e.loaded / e.total) + '%';
      }
    };
    xhr.onload = () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
      if (xhr.status === 202 && body.id) { jobId = body.id; poll(); }
      else if (xhr.status === 413) failed('The files are larger than this page accepts. Start radguard serve with a larger --max-upload-mb, or give fewer files.');
      else failed(body.error || ('The upload was refused (' + xhr.status + ').'));
    };
    xhr.onerror = () => failed('The upload did not reach radguard. Is radguard serve still running?');
    xhr.send(form);
  }

  async function poll() {
    let job;
    try {
      const res = await fetch('/api/jobs/' + jobId, { cache: 'no-store' });
      job = await res.json();
      if (!res.ok) return failed(job.error || 'radguard did not answer.');
    } catch (e) { return failed('radguard did not answer. Is radguard serve still running?'); }
    if (job.state === 'done') return done(job);
    if (job.state === 'failed') return failed(job.error);
    if (job.state === 'working' && job.total > 0) {
      $('bar').value = 20 + Math.round(80 * job.done / job.total);
      $('status').textContent = 'Cleaning: ' + job.done + ' of ' + plural(job.total, 'file') + ' done.';
    } else if (job.state === 'working') {
      $('bar').removeAttribute('value');
      $('status').textContent = 'Looking at your files, and for faces in scans of the head…';
    } else {
      $('status').textContent = 'Waiting for an earlier copy to finish…';
    }
    setTimeout(poll, 500);
  }

  function failed(message) {
    const text = String(message || 'Something went wrong.');
    const sentence = text.charAt(0).toUpperCase() + text.slice(1);
    $('error').textContent = /[.?!]$/.test(sentence) ? sentence : sentence + '.';
    show('failed');
    $('failed-title').focus();
  }

  function cell(row, text, header) {
    const td = document.createElement(header ? 'th' : 'td');
    td.textContent = text;
    row.appendChild(td);
  }

  function whatWasDone(f) {
    const parts = ['details that name you removed'];
    if (f.frames_redacted > 0) parts.push('text blacked out on ' + plural(f.frames_redacted, 'frame') + ' (' + plural(f.text_boxes, 'place') + ')');
    else if (f.read_for_text) parts.push('checked for written text: none found');
    if (f.defaced) parts.push('face removed');
    return parts.join('; ');
  }

  function done(job) {
    const r = job.report;
    $('bar').value = 100;
    const bits = [plural(r.files_shared, 'file') + ' in ' + plural(r.studies, 'study', 'studies') + ' made safe to share.'];
    if (r.faces_removed > 0) bits.push('The face was removed from ' + plural(r.faces_removed, 'head scan') + '.');
    if (r.images_redacted > 0) bits.push('Written text was blacked out on ' + plural(r.images_redacted, 'image') + '.');
    if (r.files_left_out > 0) bits.push(plural(r.files_left_out, 'file') + ' could not be made safe and ' + (r.files_left_out === 1 ? 'was' : 'were') + ' left out (see below).');
    if (r.not_images > 0) bits.push(plural(r.not_images, 'other file') + ' on the disc (not images) ' + (r.not_images === 1 ? 'was' : 'were') + ' not copied.');
    $('summary').textContent = bits.join(' ');
    $('download').href = job.download;

    const studies = $('studies');
    studies.textContent = '';
    const byStudy = new Map();
    for (const f of r.files) {
      if (!byStudy.has(f.study)) byStudy.set(f.study, []);
      byStudy.get(f.study).push(f);
    }
    for (const [label, files] of byStudy) {
      // One row per series (the images of one scan), the files themselves on request.
      const series = new Map();
      for (const f of files) {
        const key = f.file.split('/').slice(0, 3).join('/');
        if (!series.has(key)) series.set(key, []);
        series.get(key).push(f);
      }
      const table = document.createElement('table');
      const caption = document.createElement('caption');
      caption.textContent = label + ': ' + plural(files.length, 'file') + ' in ' + plural(series.size, 'series', 'series');
      table.appendChild(caption);
      const head = table.createTHead().insertRow();
      cell(head, 'Series (one scan)', true); cell(head, 'What it holds', true); cell(head, 'What was done', true);
      const body = table.createTBody();
      let n = 0;
      for (const [, list] of series) {
        const row = body.insertRow();
        const kinds = [...new Set(list.map((f) => f.kind || 'image'))].join(', ');
        const dones = [...new Set(list.map(whatWasDone))];
        cell(row, 'Series ' + (++n));
        cell(row, plural(list.length, kinds));
        cell(row, dones.length === 1 ? dones[0] + (list.length > 1 ? ' (every image)' : '')
          : dones.join(' / ') + ' (depending on the image)');
      }
      studies.appendChild(table);
      const details = document.createElement('details');
      const summaryEl = document.createElement('summary');
      summaryEl.textContent = 'Show every file of ' + label + ' (' + files.length + ')';
      details.appendChild(summaryEl);
      const list = document.createElement('table');
      const lhead = list.createTHead().insertRow();
      cell(lhead, 'File in the copy', true); cell(lhead, 'What it is', true); cell(lhead, 'What was done', true);
      const lbody = list.createTBody();
      for (const f of files) {
        const row = lbody.insertRow();
        cell(row, f.file); cell(row, f.kind || 'image'); cell(row, whatWasDone(f));
      }
      details.appendChild(list);
      studies.appendChild(details);
    }
    for (const v of r.volumes || []) {
      const p = document.createElement('p');
      p.textContent = v.file + ': a 3D volume (NIfTI), its face removed and its header rebuilt.';
      studies.appendChild(p);
    }

    const left = $('leftout');
    left.textContent = '';
    const reasons = Object.entries(r.left_out || {});
    if (reasons.length === 0) {
      const li = document.createElement('li');
      li.textContent = 'Nothing: every image could be made safe.';
      left.appendChild(li);
    }
    for (const [reason, count] of reasons) {
      const li = document.createElement('li');
      li.textContent = plural(count, 'file') + ': ' + reason + '.';
      left.appendChild(li);
    }
    if (r.dicomdirs_replaced > 0) {
      const li = document.createElement('li');
      li.textContent = 'The disc\'s index file (DICOMDIR) lists names, so a new one was made for the copy.';
      left.appendChild(li);
    }

    const previews = $('previews');
    previews.textContent = '';
    if (job.previews.length === 0) {
      const p = document.createElement('p');
      p.textContent = 'No picture had to be changed, so there is nothing to show.';
      previews.appendChild(p);
    }
    // Before and after side by side. The pictures from before stay on this computer: they
    // are not in the copy.
    for (const pv of job.previews) {
      const fig = document.createElement('figure');
      const pair = document.createElement('div');
      pair.className = 'pair';
      const picture = (src, label, alt) => {
        const box = document.createElement('div');
        const tag = document.createElement('p');
        tag.className = 'tag';
        tag.textContent = label;
        const img = document.createElement('img');
        img.src = src;
        img.alt = alt;
        box.appendChild(tag);
        box.appendChild(img);
        pair.appendChild(box);
      };
      if (pv.before) picture(pv.before, 'Before (only here)', 'Before: ' + pv.caption.replace(/: .*$/, ''));
      picture(pv.url, pv.before ? 'After (in the copy)' : 'In the copy', pv.caption);
      const cap = document.createElement('figcaption');
      cap.textContent = pv.caption;
      fig.appendChild(pair);
      fig.appendChild(cap);
      previews.appendChild(fig);
    }
    $('deleted').textContent = '';
    $('delete').disabled = false;
    show('result');
    $('result-title').focus();
  }

  async function removeJob() {
    if (!jobId) return;
    await fetch('/api/jobs/' + jobId, { method: 'DELETE' }).catch(() => null);
    jobId = null;
  }

  $('pick-folder-button').addEventListener('click', () => $('pick-folder').click());
  $('pick-files-button').addEventListener('click', () => $('pick-files').click());
  $('pick-folder').addEventListener('change', (e) => fromInput(e.target));
  $('pick-files').addEventListener('change', (e) => fromInput(e.target));
  const drop = $('drop');
  drop.addEventListener('click', () => $('pick-folder').click());
  drop.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); $('pick-folder').click(); }
  });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => { fromDrop(e).catch(() => failed('The dropped files could not be read.')); });
  $('start').addEventListener('click', upload);
  $('delete').addEventListener('click', async () => {
    await removeJob();
    $('delete').disabled = true;
    $('download').removeAttribute('href');
    $('deleted').textContent = 'Deleted: radguard keeps nothing of these scans any more. Your downloaded copy is not affected.';
  });
  const again = async () => { await removeJob(); setChosen([]); show('choose'); };
  $('again').addEventListener('click', again);
  $('retry').addEventListener('click', again);
  setChosen([]);
})();
