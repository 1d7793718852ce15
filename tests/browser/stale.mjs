// A ward page whose boards fall behind the record says so, in a real
// browser, and stops saying so once they have caught up. Run by
// tests/tests/browser.rs (a_page_says_it_is_not_up_to_date_...), which runs
// Baton on PostgreSQL and a nats-server it can freeze, and talks to this
// script one line at a time:
//
//   this script          the test
//   LIVE            ->   freezes NATS, admits a patient to W1 bed 2
//                   <-   FROZEN
//   STALE           ->   thaws NATS
//                   <-   THAWED
//   CURRENT              (done)
//
// Environment: BATON_URL, BATON_WARD_TOKEN (a ward token for POOLE),
// BATON_SECOND_FAMILY (the family name admitted while frozen),
// BATON_SCREENSHOTS, BATON_CHROMIUM. Every wait has a deadline.

import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const BASE = process.env.BATON_URL.replace(/\/$/, '');
const TOKEN = process.env.BATON_WARD_TOKEN;
const SECOND = process.env.BATON_SECOND_FAMILY;
const SHOTS = process.env.BATON_SCREENSHOTS || join(tmpdir(), 'baton-screenshots');
const CHROMIUM = process.env.BATON_CHROMIUM || '/usr/bin/chromium';
mkdirSync(SHOTS, { recursive: true });

const lines = createInterface({ input: process.stdin });
const queued = [];
const waiting = [];
lines.on('line', (line) => { const w = waiting.shift(); if (w) w(line); else queued.push(line); });
const nextLine = () => new Promise((resolve) => { const q = queued.shift(); if (q !== undefined) resolve(q); else waiting.push(resolve); });

const fail = (message) => { console.log(`FAIL  ${message}`); process.exit(1); };
const overall = setTimeout(() => fail('the stale-board scenario did not finish within 150 s'), 150_000);
overall.unref();

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  .catch((error) => fail(`could not launch Chromium at ${CHROMIUM}: ${error.message}`));
// A tablet, as on a ward.
const page = await browser.newPage({ viewport: { width: 768, height: 1024 } });
await page.goto(`${BASE}/`);
// Sign in as the page does with a pasted token: a session cookie.
const signedIn = await page.evaluate(async (t) => (await fetch('/auth/session', {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token: t }),
})).status, TOKEN);
if (signedIn !== 200) fail(`signing in with the ward token answered ${signedIn}`);
await page.goto(`${BASE}/ward/W1`);

const live = () => page.waitForFunction(() => (document.querySelector('#live')?.textContent || '').trim() === 'Live'
  && document.querySelector('#stale')?.hidden === true, null, { timeout: 60_000 });

try {
  await live();
} catch (_) {
  fail(`the ward page never said Live (it says "${await page.locator('#live').textContent()}")`);
}
console.log('ok    the ward page is live and shows no warning');
console.log('LIVE');
if ((await nextLine()) !== 'FROZEN') fail('the test did not freeze NATS');

try {
  await page.waitForFunction(() => {
    const el = document.querySelector('#stale');
    return el && !el.hidden && /Not up to date since \d\d:\d\d/.test(el.textContent);
  }, null, { timeout: 20_000 });
} catch (_) {
  fail(`no "Not up to date since HH:MM" warning within 20 s (#live says "${await page.locator('#live').textContent()}")`);
}
const warning = await page.locator('#stale').textContent();
const role = await page.locator('#stale').getAttribute('role');
if (role !== 'alert') fail(`the warning is not announced (role=${role})`);
const liveText = (await page.locator('#live').textContent()).trim();
if (!liveText.startsWith('Not up to date')) fail(`#live still says "${liveText}" while the warning shows`);
const box = await page.locator('#stale').boundingBox();
if (!box || box.y > 300) fail(`the warning is not at the top of the page (y=${box && box.y})`);
console.log(`ok    the page warns: "${warning}"`);
await page.screenshot({ path: join(SHOTS, 'ward-not-up-to-date.png'), fullPage: true });
console.log('STALE');
if ((await nextLine()) !== 'THAWED') fail('the test did not thaw NATS');

try {
  await live();
  await page.waitForFunction((family) => (document.querySelector('#beds tr[data-bed="2"]')?.textContent || '').includes(family),
    SECOND, { timeout: 20_000 });
} catch (_) {
  fail(`after NATS came back the page did not catch up (warning: "${await page.locator('#stale').textContent()}", #live: "${await page.locator('#live').textContent()}")`);
}
console.log('ok    caught up: the warning is gone, the page says Live and shows the patient admitted meanwhile');
console.log('CURRENT');
await browser.close();
process.exit(0);
