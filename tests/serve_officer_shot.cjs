// The privacy officer's section of radguard serve in headless Chromium (Debian's, driven by
// playwright-core; no browser download). Run by serve_officer_test.sh when they are present:
//   node serve_officer_shot.cjs PLAYWRIGHT_CORE_DIR URL PATIENT_ID SCREENSHOT
// Opens the page, looks the patient up, verifies the ledger, checks what the section shows
// (one consent decision, one disclosure, the ledger intact) and takes a screenshot of it.
'use strict';
const [pwDir, url, patient, shot] = process.argv.slice(2);
const { chromium } = require(pwDir);

function check(condition, message) {
  if (!condition) throw new Error('FAIL: ' + message);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  const problems = [];  // a Content-Security-Policy violation or a script error fails the test
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  try {
    await page.goto(url);
    await page.locator('#officer').waitFor({ state: 'visible' });
    await page.getByLabel('Patient ID').fill(patient);
    await page.getByRole('button', { name: 'Look up' }).click();
    await page.locator('#officer-result').waitFor({ state: 'visible' });
    const consentRows = await page.locator('#officer-consent tbody tr').count();
    const disclosureRows = await page.locator('#officer-disclosures tbody tr').count();
    check(consentRows === 1, 'consent rows: ' + consentRows);
    check(disclosureRows === 1, 'disclosure rows: ' + disclosureRows);
    check(/permit/.test(await page.locator('#officer-consent').innerText()), 'no permit shown');
    check(/intact/.test(await page.locator('#officer-integrity').innerText()), 'integrity not shown');
    await page.getByRole('button', { name: 'Verify the ledger' }).click();
    await page.locator('#officer-status', { hasText: 'The ledger is intact' }).waitFor();
    check(problems.length === 0, 'errors in the browser: ' + problems.join(' | '));
    await page.locator('#officer').screenshot({ path: shot });
    console.log('PASS: the officer section shows 1 consent decision, 1 disclosure, ledger intact');
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(String(e)); process.exit(1); });
