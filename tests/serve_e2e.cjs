// The patient's page of radguard serve in a real headless Chromium (Debian's), driven by
// playwright-core (no browser download). Run by serve_e2e_test.sh:
//   node serve_e2e.cjs PLAYWRIGHT_CORE_DIR URL CD_FOLDER CLIMBING_ZIP OUT_DIR SCREENSHOT_DIR [BIG_CD]
// Picks the CD folder with the folder button, waits for the result, checks the report,
// downloads the zip into OUT_DIR/download.zip, deletes the job; then gives a zip whose entry
// climbs out and checks the refusal. With BIG_CD (a CD of 500 files and more): progress is
// visible and rises while it is shared, and the page and the server answer within a second
// meanwhile. Screenshots of each page into SCREENSHOT_DIR.
'use strict';
const [pwDir, url, cd, climbingZip, outDir, shots, bigCd] = process.argv.slice(2);
const { chromium } = require(pwDir);
const path = require('path');

function check(condition, message) {
  if (!condition) throw new Error('FAIL: ' + message);
}

(async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const problems = [];
  // Errors in the browser (a Content-Security-Policy violation, a script error) fail the
  // test; the one expected failed request is the refused upload at the end (400).
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 400/.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  try {
    await page.goto(url);
    check(!page.url().includes('token='), 'the token stays in the address: ' + page.url());
    await page.getByRole('heading', { name: /safe to share/ }).waitFor();
    // Keyboard: the drop area and the buttons are reached with Tab.
    const reached = [];
    for (let i = 0; i < 4; ++i) {
      await page.keyboard.press('Tab');
      reached.push(await page.evaluate(() => document.activeElement && document.activeElement.id));
    }
    check(reached.includes('drop') && reached.includes('pick-folder-button'), 'Tab reaches ' + reached);
    await page.screenshot({ path: path.join(shots, '1-choose.png'), fullPage: true });

    await page.setInputFiles('#pick-folder', cd);
    const chosen = await page.locator('#chosen').textContent();
    check(/\d+ files chosen/.test(chosen), 'chosen: ' + chosen);
    await page.getByRole('button', { name: 'Make the safe copy' }).click();
    await page.locator('#working').waitFor({ state: 'visible' });
    await page.waitForTimeout(1500);
    await page.screenshot({ path: path.join(shots, '2-working.png'), fullPage: true });
    const start = Date.now();
    await page.locator('#result, #failed').first().waitFor({ state: 'visible', timeout: 480000 });
    check(await page.locator('#result').isVisible(), 'failed: ' + await page.locator('#error').textContent());
    console.log('result after ' + ((Date.now() - start) / 1000).toFixed(1) + ' s');
    await page.waitForFunction(() => Array.from(document.images).every((i) => i.complete));

    const summary = await page.locator('#summary').textContent();
    check(/made safe to share/.test(summary), 'summary: ' + summary);
    check(/blacked out on 1 image/.test(summary), 'no redaction in the summary: ' + summary);
    const headed = /face was removed/.test(summary);
    const tables = await page.locator('#studies table').count();
    check(tables >= 1, 'no per-study table');
    const rows = await page.locator('#studies details tbody tr').allTextContents();
    const seriesRows = await page.locator('#studies > table tbody tr').allTextContents();
    check(seriesRows.length >= (headed ? 2 : 1), 'series rows: ' + seriesRows.length);
    check(rows.some((r) => /text blacked out/.test(r)), 'no file says text was blacked out');
    if (headed) check(rows.some((r) => /face removed/.test(r)), 'no file says its face was removed');
    const figures = page.locator('#previews figure');
    check(await figures.count() >= (headed ? 2 : 1), 'previews: ' + await figures.count());
    const images = await page.evaluate(() => Array.from(document.querySelectorAll('#previews img'))
      .map((i) => ({ w: i.naturalWidth, alt: i.alt })));
    check(images.every((i) => i.w > 0 && i.alt.length > 0), 'a preview did not load or has no alt text');
    if (headed) check(images.some((i) => /face was removed/.test(i.alt)), 'no defacing rendering');
    // Before and after: the blacked-out frame and each head view, from the front and the side.
    const befores = images.filter((i) => /^Before: /.test(i.alt)).length;
    check(befores >= 1 && befores * 2 === images.length, 'before pictures: ' + befores + ' of ' + images.length);
    if (headed) {
      check(images.some((i) => /seen from the front/.test(i.alt)), 'no front rendering');
      check(images.some((i) => /seen from the side/.test(i.alt)), 'no side rendering');
    }
    const left = await page.locator('#leftout').textContent();
    check(/index file \(DICOMDIR\)/.test(left), 'left out: ' + left);
    const text = await page.locator('body').textContent();
    for (const secret of ['DOE', 'PID12345', '19300102', 'Elsewhere'])
      check(!text.includes(secret), 'the page shows ' + secret);
    await page.screenshot({ path: path.join(shots, '3-result.png'), fullPage: true });
    await page.locator('#studies details summary').first().click();
    await page.locator('#studies details').first().screenshot({ path: path.join(shots, '3b-every-file.png') });

    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#download').click()]);
    check(download.suggestedFilename() === 'safe-copy.zip', 'download name ' + download.suggestedFilename());
    await download.saveAs(path.join(outDir, 'download.zip'));

    await page.getByRole('button', { name: 'Delete these files from this computer' }).click();
    await page.locator('#deleted').filter({ hasText: 'Deleted' }).waitFor();
    await page.screenshot({ path: path.join(shots, '4-deleted.png') });

    // A zip with an entry that climbs out of it: refused, in plain words.
    await page.getByRole('button', { name: 'Start again with other scans' }).click();
    await page.setInputFiles('#pick-files', climbingZip);
    await page.getByRole('button', { name: 'Make the safe copy' }).click();
    await page.locator('#failed').waitFor({ state: 'visible' });
    const error = await page.locator('#error').textContent();
    check(/points outside the zip/.test(error), 'refusal: ' + error);
    await page.screenshot({ path: path.join(shots, '5-refused.png') });

    if (bigCd) {
      // A large CD: the progress bar moves, and the page (its script) and the server (another
      // request) answer within a second while the copy is made.
      await page.getByRole('button', { name: 'Try again' }).click();
      await page.setInputFiles('#pick-folder', bigCd);
      const files = Number((await page.locator('#chosen').textContent()).match(/(\d+) files/)[1]);
      check(files >= 500, 'the large CD has ' + files + ' files');
      const begin = Date.now();
      await page.getByRole('button', { name: 'Make the safe copy' }).click();
      const seen = [];
      let slowest = 0, shot = false, cleaning = 0;  // cleaning: files done, as the page said
      while (!(await page.locator('#result').isVisible()) && !(await page.locator('#failed').isVisible())) {
        check(Date.now() - begin < 300000, 'the large CD takes more than 5 minutes');
        const t0 = Date.now();
        const state = await page.evaluate(async () => {
          const bar = document.getElementById('bar');
          const answer = await fetch('/style.css', { cache: 'no-store' });
          return { value: bar.hasAttribute('value') ? bar.value : -1, status: document.getElementById('status').textContent, http: answer.status };
        });
        const took = Date.now() - t0;
        slowest = Math.max(slowest, took);
        check(state.http === 200, 'a request meanwhile was answered ' + state.http);
        // the bar: the upload up to 20, then the files cleaned
        if (state.value >= 0 && (seen.length === 0 || seen[seen.length - 1] !== state.value)) seen.push(state.value);
        const m = state.status.match(/Cleaning: (\d+) of (\d+)/);
        if (m) {
          cleaning = Math.max(cleaning, Number(m[1]));
          if (!shot && Number(m[1]) > 0) { await page.screenshot({ path: path.join(shots, '6-large-cd-working.png') }); shot = true; }
        }
        await page.waitForTimeout(100);
      }
      check(await page.locator('#result').isVisible(), 'the large CD failed: ' + await page.locator('#error').textContent());
      const seconds = (Date.now() - begin) / 1000;
      console.log('large CD: ' + files + ' files in ' + seconds.toFixed(1) + ' s; progress seen ' + seen.join(',') +
        '; slowest answer meanwhile ' + slowest + ' ms');
      check(seen.length >= 4, 'progress seen only at ' + seen.join(','));
      check(cleaning > 0, 'no file count seen while cleaning');
      for (let i = 1; i < seen.length; ++i) check(seen[i] > seen[i - 1], 'progress went back: ' + seen.join(','));
      check(slowest < 1000, 'the page or the server took ' + slowest + ' ms to answer');
      const summary = await page.locator('#summary').textContent();
      check(/^50\d files in .* made safe to share/.test(summary), 'large CD summary: ' + summary);
      await page.getByRole('button', { name: 'Delete these files from this computer' }).click();
      await page.locator('#deleted').filter({ hasText: 'Deleted' }).waitFor();
    }
    check(problems.length === 0, 'browser errors (CSP?): ' + problems.join(' | '));
    console.log('serve e2e: ' + rows.length + ' files, ' + images.length + ' previews, headed=' + headed);
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e.message || e); process.exit(1); });
