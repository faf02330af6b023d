// radguard serve: the privacy officer's part (shown only when the server was given a consent
// registry, a ledger and the key: /api/officer says so). Read only. Text from
// the server is always put in with textContent, never as HTML.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);

  async function getJson(url) {
    const response = await fetch(url, { credentials: 'same-origin', cache: 'no-store' });
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) throw new Error((body && body.error) || ('HTTP ' + response.status));
    return body;
  }
  function element(tag, text, className) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (className) e.className = className;
    return e;
  }
  // A table from column titles and rows of plain values.
  function table(caption, titles, rows) {
    const t = element('table');
    t.appendChild(element('caption', caption));
    const head = t.createTHead().insertRow();
    for (const title of titles) { const th = element('th', title); th.scope = 'col'; head.appendChild(th); }
    const body = t.createTBody();
    for (const row of rows) {
      const tr = body.insertRow();
      for (const value of row) tr.appendChild(element('td', value));
    }
    return t;
  }

  function showConsent(data) {
    const box = $('officer-consent');
    box.replaceChildren();
    if (data.history.length === 0) {
      box.appendChild(element('p', 'No consent decision is recorded for this patient; the registry\'s default policy applies.'));
      return;
    }
    box.appendChild(table(data.history.length + ' decision(s), oldest first',
      ['Purpose', 'Decision', 'Decided on', 'Expires', 'Source'],
      data.history.map((r) => [r.purpose, r.decision, r.date, r.expires || 'never', r.source])));
  }

  function showDisclosures(data) {
    const integrity = $('officer-integrity');
    integrity.className = data.ledger_intact ? 'ok' : 'bad';
    integrity.textContent = data.ledger_intact
      ? 'The ledger is intact: this accounting is complete.'
      : 'The ledger has been altered: ' + data.ledger_problem + '. This accounting may be incomplete.';
    const box = $('officer-disclosures');
    box.replaceChildren();
    const list = data.disclosures || [];
    if (list.length === 0) {
      box.appendChild(element('p', 'No disclosure of this patient is recorded' +
        (data.since ? ' since ' + data.since : '') + '.'));
      return;
    }
    box.appendChild(table(list.length + ' disclosure(s), oldest first',
      ['When', 'To whom, for what', 'What was disclosed', 'Release'],
      list.map((d) => [d.date, d.recipient + ' (' + d.purpose + ')', d.description,
        d.release + ' (ledger entry ' + d.ledger_entry + ')'])));
  }

  async function lookUp(event) {
    event.preventDefault();
    const patient = $('officer-patient').value.trim();
    if (!patient) return;
    const query = '?patient=' + encodeURIComponent(patient);
    $('officer-status').textContent = 'Looking up\u2026';
    try {
      const [consent, accounting] = await Promise.all([
        getJson('/api/officer/consent' + query), getJson('/api/officer/disclosures' + query)]);
      showConsent(consent);
      showDisclosures(accounting);
      $('officer-result').hidden = false;
      $('officer-status').textContent = 'Found ' + consent.history.length + ' consent decision(s) and ' +
        (accounting.disclosures || []).length + ' disclosure(s).';
    } catch (e) {
      $('officer-result').hidden = true;
      $('officer-status').textContent = 'The look-up failed: ' + e.message;
    }
  }

  async function verify() {
    const status = $('officer-status');
    status.textContent = 'Verifying the ledger\u2026';
    try {
      const v = await getJson('/api/officer/verify');
      status.textContent = v.intact
        ? 'The ledger is intact: ' + v.entries + ' entries, each linked to the one before.'
        : 'The ledger has been altered at entry ' + v.first_bad_sequence + ': ' + v.problem;
    } catch (e) {
      status.textContent = 'The ledger could not be verified: ' + e.message;
    }
  }

  // A release folder checked by the server (verify-release): a summary, the reasons, one row
  // per file. Plain words for the library's names.
  const FILE_STATES = {
    intact: 'the same as when it was released',
    altered: 'changed since it was released',
    missing: 'listed in the manifest but not in the folder',
    added: 'in the folder but not in the manifest',
    unreadable: 'cannot be read',
  };
  const SIGNATURES = {
    valid: 'valid',
    untrusted_signer: 'intact, but the signer is not one of the trusted certificates',
    expired_certificate: 'intact, but the certificate has expired',
    unsigned: 'not signed',
    invalid: 'broken: the file or the signature was changed',
    error: 'could not be checked',
  };
  const plural = (n, one, many) => n + ' ' + (n === 1 ? one : many);

  function showRelease(r) {
    const files = r.files || [];
    const good = files.filter((f) => f.good).length;
    const failed = files.length - good;
    const summary = $('officer-release-summary');
    summary.className = r.passed ? 'ok' : 'bad';
    summary.textContent = (r.passed ? 'Verified: ' : 'Not verified: ') +
      plural(good, 'file', 'files') + ' verified, ' + plural(failed, 'file', 'files') + ' failed' +
      ' (release ' + (r.release || 'without a name') + ').';
    const why = $('officer-release-why');
    why.replaceChildren();
    const sig = r.manifest_signature || {};
    if (sig.status === 'valid') {
      why.appendChild(element('li', 'The manifest is signed by ' + sig.signer + ', a trusted certificate.'));
    } else if (sig.status === 'unsigned') {
      why.appendChild(element('li', 'The manifest is not signed (no manifest.json.p7s): its list of files cannot be trusted.'));
    } else {
      why.appendChild(element('li', 'The manifest\u2019s signature is ' + (SIGNATURES[sig.status] || sig.status) +
        (sig.reason ? ' (' + sig.reason + ')' : '') + '.'));
    }
    if (r.trusted_certificates === 0)
      why.appendChild(element('li', 'radguard serve was given no trusted certificate (--trust), so no signature can be trusted.'));
    for (const p of r.manifest_problems || []) why.appendChild(element('li', 'The manifest: ' + p));
    const counts = r.counts || {};
    for (const state of ['altered', 'missing', 'added', 'unreadable'])
      if (counts[state]) why.appendChild(element('li', plural(counts[state], 'file', 'files') + ' ' + FILE_STATES[state] + '.'));
    if (counts.unsigned) why.appendChild(element('li', plural(counts.unsigned, 'file is', 'files are') + ' not signed.'));
    if (counts.bad_signature) why.appendChild(element('li', plural(counts.bad_signature, 'file has', 'files have') + ' a signature that is not valid.'));
    const box = $('officer-release-files');
    box.replaceChildren();
    // Failed files first, then the rest, each in the manifest's order.
    const ordered = files.filter((f) => !f.good).concat(files.filter((f) => f.good));
    box.appendChild(table(plural(files.length, 'file', 'files') + ', failed ones first',
      ['File', 'Verdict', 'Compared with the manifest', 'DICOM signature', 'Why'],
      ordered.map((f) => [f.path, f.good ? 'verified' : 'FAILED', FILE_STATES[f.state] || f.state,
        f.signature === undefined ? '\u2013' : (SIGNATURES[f.signature] || f.signature), f.detail || ''])));
    const rows = box.querySelectorAll('tbody tr');
    ordered.forEach((f, i) => { rows[i].cells[1].className = f.good ? 'ok' : 'bad'; });
  }

  async function verifyRelease(event) {
    event.preventDefault();
    const folder = $('officer-folder').value.trim();
    if (!folder) return;
    const status = $('officer-release-status');
    status.textContent = 'Verifying the release\u2026';
    $('officer-release-result').hidden = true;
    try {
      const r = await getJson('/api/officer/release?folder=' + encodeURIComponent(folder));
      showRelease(r);
      $('officer-release-result').hidden = false;
      status.textContent = 'Checked ' + plural((r.files || []).length, 'file', 'files') + '.';
    } catch (e) {
      status.textContent = 'The folder could not be verified: ' + e.message;
    }
  }

  async function start() {
    let info;
    try { info = await getJson('/api/officer'); } catch (e) { return; }
    if (!info || info.officer !== true) return;  // not enabled: the section stays hidden
    $('officer-ledger').textContent = info.ledger;
    $('officer-registry').textContent = info.registry;
    $('officer-form').addEventListener('submit', lookUp);
    $('officer-verify').addEventListener('click', verify);
    $('officer-trust').textContent = info.trusted_certificates === 0
      ? 'none: no signature can be trusted'
      : plural(info.trusted_certificates, 'certificate', 'certificates');
    $('officer-release-form').addEventListener('submit', verifyRelease);
    $('officer').hidden = false;
  }
  start();
})();
