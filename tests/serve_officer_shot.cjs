// The privacy officer's section of radguard serve in headless Chromium (Debian's, driven by
// playwright-core; no browser download). Run by serve_officer_test.sh when they are present:
//   node serve_officer_shot.cjs PLAYWRIGHT_CORE_DIR URL PATIENT_ID SCREENSHOT [RELEASE SHOT2]
// Opens the page, looks the patient up, verifies the ledger, checks what the section shows
// (one consent decision, one disclosure, the ledger intact) and takes a screenshot of it.
// With RELEASE (a release folder with one file intact, one altered, one missing, one added), verifies it
// on the page, checks the summary and the rows, and takes a screenshot of that part.
'use strict';
const [pwDir, url, patient, shot, release, releaseShot] = process.argv.slice(2);
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
    if (release) {
      check(/1 certificate/.test(await page.locator('#officer-trust').innerText()), 'trust not shown');
      await page.getByLabel('Release folder').fill(release);
      await page.getByRole('button', { name: 'Verify the release' }).click();
      await page.locator('#officer-release-result').waitFor({ state: 'visible' });
      const summary = await page.locator('#officer-release-summary').innerText();
      check(/^Not verified: 1 file verified, 3 files failed/.test(summary), 'summary: ' + summary);
      const why = await page.locator('#officer-release-why').innerText();
      check(/signed by/.test(why), 'manifest signature not shown: ' + why);
      for (const words of ['changed since it was released', 'listed in the manifest but not in the folder',
        'in the folder but not in the manifest'])
        check(why.includes(words), 'reason missing: ' + words + ' in ' + why);
      const rows = page.locator('#officer-release-files tbody tr');
      check(await rows.count() === 4, 'release rows: ' + await rows.count());
      check(/FAILED/.test(await rows.nth(0).innerText()), 'first row not failed');
      check(/broken/.test(await page.locator('#officer-release-files').innerText()), 'bad signature not shown');
      check(problems.length === 0, 'errors in the browser: ' + problems.join(' | '));
      await page.locator('#officer-release').screenshot({ path: releaseShot });
      console.log('PASS: the release check shows 1 verified, 3 failed, with the reasons');
    }
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(String(e)); process.exit(1); });
