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

  async function start() {
    let info;
    try { info = await getJson('/api/officer'); } catch (e) { return; }
    if (!info || info.officer !== true) return;  // not enabled: the section stays hidden
    $('officer-ledger').textContent = info.ledger;
    $('officer-registry').textContent = info.registry;
    $('officer-form').addEventListener('submit', lookUp);
    $('officer-verify').addEventListener('click', verify);
    $('officer').hidden = false;
  }
  start();
})();
