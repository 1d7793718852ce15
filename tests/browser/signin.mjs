// A ward nurse's sign-in through her organisation's OpenID provider, in a
// real Chromium: the provider (oidc-provider from npm) asks for her login,
// she works on the ward page while a colleague changes things, walks away
// and the page signs her out when the session goes idle, signs in again
// (the provider remembers her), and signs out of Baton and the provider.
// Then the care transfer hub's coordinator and a trust's nurse, whom the
// mapping (oidc-roles.toml) knows only by a group, sign in and work.
// Run by tests/tests/browser.rs, which passes:
//
//   BATON_URL           the running Baton, signing in through the provider
//   BATON_WARD_TOKEN    a ward token for POOLE ("another session", by the API)
//   BATON_SPELL         the spell in W1 bed 1
//   BATON_IDLE_SECONDS  the session idle timeout Baton runs with
//   BATON_CHROMIUM      the browser (default /usr/bin/chromium)
//
// Every wait has a deadline; a failed step ends the script with exit 1.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE = process.env.BATON_URL.replace(/\/$/, '');
const WARD_TOKEN = process.env.BATON_WARD_TOKEN;
const SPELL = process.env.BATON_SPELL;
const IDLE = Number(process.env.BATON_IDLE_SECONDS || 8) * 1000;
const CHROMIUM = process.env.BATON_CHROMIUM || '/usr/bin/chromium';
const AXE = readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'node_modules/axe-core/axe.min.js'), 'utf8');
const TIMEOUT = 10_000;

const overall = setTimeout(() => { console.log('FAIL  the sign-in scenario did not finish within 150 s'); process.exit(1); }, 150_000);
overall.unref();

let failed = false;
async function step(what, check) {
  const started = Date.now();
  try {
    await check();
    console.log(`  ok    ${what} (${Date.now() - started} ms)`);
  } catch (error) {
    failed = true;
    console.log(`  FAIL  ${what} (${Date.now() - started} ms)\n        ${String(error.message || error).split('\n').slice(0, 6).join('\n        ')}`);
    throw error;
  }
}
const assert = (condition, message) => { if (!condition) throw new Error(message); };

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
const context = await browser.newContext({ viewport: { width: 768, height: 1024 }, locale: 'en-GB' });
context.setDefaultTimeout(TIMEOUT);
const errors = [];
// Each person's own browser (cookies of Baton and the provider alike).
async function browserOf() {
  const own = await browser.newContext({ viewport: { width: 768, height: 1024 }, locale: 'en-GB' });
  own.setDefaultTimeout(TIMEOUT);
  const tab = await own.newPage();
  tab.on('pageerror', (error) => errors.push(`uncaught ${error.message}`));
  tab.on('console', (message) => {
    if (message.type() === 'error' && /Content.Security.Policy|Refused to/i.test(message.text())) errors.push(message.text());
  });
  return tab;
}
let page = await context.newPage();
page.on('pageerror', (error) => errors.push(`uncaught ${error.message}`));
page.on('console', (message) => {
  if (message.type() === 'error' && /Content.Security.Policy|Refused to/i.test(message.text())) errors.push(message.text());
});

async function accessible(what) {
  if (!(await page.evaluate(() => Boolean(window.axe)))) await page.evaluate(AXE);
  const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] }))
    .violations.map((v) => `${v.id}: ${v.help} at ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')}`));
  assert(violations.length === 0, `axe finds on ${what}:\n${violations.join('\n')}`);
}
const text = async (selector) => (await page.locator(selector).first().textContent()) || '';
async function waitForText(selector, pattern, within = TIMEOUT) {
  await page.waitForFunction(([s, p]) => new RegExp(p).test(document.querySelector(s)?.textContent || ''), [selector, pattern.source], { timeout: within })
    .catch(async () => { throw new Error(`${selector} says "${await text(selector).catch(() => '')}", not ${pattern}`); });
}
const isLive = () => page.waitForFunction(() => (document.querySelector('#live')?.textContent || '').trim() === 'Live', null, { timeout: TIMEOUT });
const onPath = (path) => page.waitForURL((url) => url.origin === BASE && url.pathname === path, { timeout: TIMEOUT });

async function providerLogin(login) {
  await page.locator('input[name="login"]').waitFor();
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', 'any password');
  await page.click('button[type="submit"]');
}

try {
  console.log('\n# A ward nurse signs in through her organisation, works, goes idle, signs out');
  await step('a deep link to the ward asks her to sign in with her organisation, and offers no token box', async () => {
    await page.goto(`${BASE}/ward/W1`);
    await page.locator('#provider-sign-in').waitFor();
    assert(await page.locator('#token').count() === 0, 'the token box is offered beside the provider');
    await waitForText('#going', /\/ward\/W1/);
    await accessible('the sign-in page');
  });
  await step('the provider asks for her login and sends her back to the ward page, signed in and live', async () => {
    await page.click('#provider-sign-in');
    await page.waitForURL((url) => url.origin !== BASE);
    await providerLogin('wendy.ward');
    await onPath('/ward/W1');
    await waitForText('#who', /Wendy Ward/);
    await isLive();
    assert(!page.url().includes('token'), `a token in the address: ${page.url()}`);
    const stored = await page.evaluate(() => JSON.stringify({ ...sessionStorage }) + JSON.stringify({ ...localStorage }) + document.cookie);
    assert(!/eyJ/.test(stored), 'a token is kept where scripts can read it');
  });
  await step('she sets bed 1\'s pathway in the page (a change carried by the cookie and the anti-forgery token)', async () => {
    await page.locator('#beds tr[data-bed="1"] button[data-action="open"]').click();
    const pathway = page.locator('#panel form[data-command="pathway"]');
    await pathway.locator('[name="pathway"]').selectOption('P2');
    await pathway.locator('button[type="submit"]').click();
    await waitForText('#panel form[data-command="pathway"] .done', /Pathway saved/);
    await page.keyboard.press('Escape');
  });
  await step('a colleague sets bed 1\'s EDD through the API: it shows on her page within 5 s', async () => {
    const date = new Date(Date.now() + 3 * 86_400_000).toISOString().slice(0, 10);
    const answer = await fetch(`${BASE}/api/v1/spells/${SPELL}/expected-discharge-date`, {
      method: 'POST', headers: { Authorization: `Bearer ${WARD_TOKEN}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ date }),
    });
    assert(answer.status === 200 || answer.status === 201, `the colleague's EDD answered ${answer.status}`);
    const shown = new Date(`${date}T12:00:00Z`).toLocaleDateString('en-GB', { day: 'numeric', month: 'short' });
    await waitForText('#beds tr[data-bed="1"]', new RegExp(shown), 5_000);
  });
  await step(`typing a long note for longer than the idle time (${IDLE / 1000} s) does not sign her out`, async () => {
    await page.locator('#beds tr[data-bed="1"] button[data-action="open"]').click();
    const note = page.locator('#panel form[data-command="delay"] [name="note"]');
    await note.waitFor();
    await note.focus();
    const until = Date.now() + IDLE * 1.5;
    while (Date.now() < until) {
      await page.keyboard.type('a', { delay: 0 });
      await page.waitForTimeout(500); // a person typing, not a wait for the page
    }
    assert(await page.locator('#ended').count() === 0, 'she was signed out while typing');
    assert((await note.inputValue()).length > 5, 'the note was lost');
    await note.blur();
  });
  await step(`she walks away: after ${IDLE / 1000} s idle the page says her session ended and asks her to sign in`, async () => {
    await page.locator('#ended').waitFor({ timeout: IDLE + 10_000 });
    await waitForText('#ended', /session has ended/);
    await page.locator('#provider-sign-in').waitFor();
    await accessible('the sign-in page after the idle timeout');
  });
  await step('she signs in again: the provider remembers her and she is back on the ward, live', async () => {
    await page.click('#provider-sign-in');
    await onPath('/ward/W1');
    await waitForText('#who', /Wendy Ward/);
    await isLive();
  });
  let cookie;
  await step('sign out ends the session at Baton and at the provider, and lands on the sign-in page', async () => {
    cookie = (await context.cookies()).find((c) => c.name === 'baton_session');
    assert(cookie && cookie.httpOnly, 'no HttpOnly session cookie');
    await page.click('#sign-out');
    // The provider asks whether to sign out there too.
    await page.locator('button[name="logout"][value="yes"]').click();
    await onPath('/');
    await waitForText('#ended', /signed out/);
    const again = await fetch(`${BASE}/api/v1/session`, { headers: { Cookie: `baton_session=${cookie.value}` } });
    assert(again.status === 401, `the ended session still answers ${again.status}`);
  });
  await step('signing in now asks the provider for her login again', async () => {
    await page.click('#provider-sign-in');
    await page.locator('input[name="login"]').waitFor();
  });

  console.log('\n# The care transfer hub and a trust\'s ward staff sign in with only a group the mapping knows');
  page = await browserOf();
  await step('the hub coordinator signs in and lands on the hub\'s discharge-ready patients, live', async () => {
    await page.goto(`${BASE}/`);
    await page.click('#provider-sign-in');
    await providerLogin('hana.hub');
    await onPath('/hub/DORSET-HUB');
    await waitForText('h1', /Dorset care transfer hub: discharge-ready patients/);
    await isLive();
    await accessible('the hub page');
  });
  await step('reloading the hub page keeps her on it (the server serves every page the script routes to)', async () => {
    await page.reload();
    await onPath('/hub/DORSET-HUB');
    await waitForText('h1', /discharge-ready patients/);
    await isLive();
  });
  page = await browserOf();
  await step('a UHD trust nurse signs in and works on a ward of each of the trust\'s hospitals', async () => {
    await page.goto(`${BASE}/ward/R1`);
    await page.click('#provider-sign-in');
    await providerLogin('tom.trust');
    await onPath('/ward/R1');
    await waitForText('#who', /Tom Trust/);
    await page.locator('#beds').waitFor();
    await isLive();
    await page.goto(`${BASE}/ward/W1`);
    await page.locator('#beds tr[data-bed="1"]').waitFor();
    await isLive();
  });
  await step('the trust nurse may not open another trust\'s ward: the page says so', async () => {
    await page.goto(`${BASE}/ward/X1`);
    await waitForText('#forbidden', /may not see Ward X1/);
    assert(await page.locator('#beds').count() === 0, 'another trust\'s beds are shown');
  });
  await step('no script errors or CSP violations', async () => {
    assert(errors.length === 0, errors.join('\n'));
  });
} catch (_) {
  // Reported by its step.
}
await browser.close();
console.log(failed ? 'FAILED' : 'PASSED');
process.exit(failed ? 1 : 0);
