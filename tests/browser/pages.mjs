// Baton's pages in a real browser: Debian's headless Chromium driven by
// playwright-core. Run by tests/tests/browser.rs, which spawns Baton, seeds
// reference data and a patient in W1 bed 1 referred to REAB, and passes:
//
//   BATON_URL                  the running Baton (http://127.0.0.1:port)
//   BATON_ADMIN_TOKEN          an admin token (for the paste-a-token sign-in)
//   BATON_SEED_FAMILY_NAME     the family name of the patient in W1 bed 1
//   BATON_SEED_REFERRAL        that patient's referral to REAB
//   BATON_SEED_FAMILY_NAMES    every seeded family name, comma-separated
//   BATON_SCREENSHOTS          where to save the pages' screenshots
//   BATON_FAILURE_SCREENSHOTS  where to save a screenshot of a failed step
//   BATON_CHROMIUM             the browser (default /usr/bin/chromium)
//
// Every wait has a deadline (playwright's auto-waiting locators and
// waitForFunction); nothing sleeps for a fixed time. Each step prints what it
// checks; a failed step ends its scenario, the others still run, and the
// script exits 1 if anything failed.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { chromium } from 'playwright-core';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) {
    console.error(`FATAL: ${name} is not set (tests/tests/browser.rs sets it)`);
    process.exit(2);
  }
  return value;
};

const BASE = env('BATON_URL').replace(/\/$/, '');
const ADMIN_TOKEN = env('BATON_ADMIN_TOKEN');
const SEED_FAMILY = env('BATON_SEED_FAMILY_NAME');
const SEED_REFERRAL = env('BATON_SEED_REFERRAL');
const SEED_FAMILIES = env('BATON_SEED_FAMILY_NAMES', SEED_FAMILY).split(',').filter(Boolean);
const SHOTS = env('BATON_SCREENSHOTS', join(tmpdir(), 'baton-screenshots'));
const FAILURE_SHOTS = env('BATON_FAILURE_SCREENSHOTS', join(tmpdir(), 'baton-browser-failures'));
const CHROMIUM = env('BATON_CHROMIUM', '/usr/bin/chromium');
// How long any one wait may take; the live update has its own 5 s below.
const TIMEOUT = Number(process.env.BATON_BROWSER_TIMEOUT_MS || 10_000);
const LIVE_WITHIN = 5_000;

mkdirSync(SHOTS, { recursive: true });
mkdirSync(FAILURE_SHOTS, { recursive: true });

// The whole run is bounded too: a hang is a failure, not a stuck CI.
const overall = setTimeout(() => {
  console.log('FAIL  the browser tests did not finish within 240 s');
  process.exit(1);
}, 240_000);
overall.unref();

// ---------- NHS numbers ----------

function checkDigit(nine) {
  const sum = [...nine].reduce((acc, d, i) => acc + Number(d) * (10 - i), 0);
  const check = 11 - (sum % 11);
  return check === 11 ? 0 : check === 10 ? null : check;
}

// The first valid NHS number at or after the 9 digits `start`.
function validNhs(start) {
  for (let n = Number(start); ; n += 1) {
    const check = checkDigit(String(n));
    if (check !== null) return `${n}${check}`;
  }
}

const INVALID_NHS = '9912003814'; // fails Modulus 11
if (checkDigit(INVALID_NHS.slice(0, 9)) === Number(INVALID_NHS[9])) throw new Error('INVALID_NHS is valid');

// Patients admitted through the pages.
const PEOPLE = {
  form: { nhs: '9434765919', family: 'Brightwater', given: 'Iris', dob: '1938-05-14', bed: '2' },
  other: { nhs: validNhs('943476600'), family: 'Okonkwo', given: 'Chidi', dob: '1950-11-02', bed: '4' },
  // Day and month alike: a date input's typed order (day/month or month/day)
  // follows the browser's own locale, which headless Chromium does not take from the page.
  keyboard: { nhs: validNhs('943476700'), family: 'Adeyemi', given: 'Tola', dob: '1941-03-03', bed: '5' },
};
const ALL_FAMILIES = [...new Set([...SEED_FAMILIES, ...Object.values(PEOPLE).map((p) => p.family)])];

// ---------- steps and scenarios ----------

let passed = 0;
let failed = 0;
const failures = [];
const pageErrors = new Map(); // page -> [messages]

class StepFailed extends Error {}

async function step(what, check, page) {
  const started = Date.now();
  try {
    const value = await check();
    passed += 1;
    console.log(`  ok    ${what} (${Date.now() - started} ms)`);
    return value;
  } catch (error) {
    failed += 1;
    const message = String(error && error.message ? error.message : error)
      .split('\n').filter((l) => l.trim()).slice(0, 8).join('\n        ');
    console.log(`  FAIL  ${what} (${Date.now() - started} ms)\n        ${message}`);
    let shot = '';
    if (page && !page.isClosed()) {
      shot = join(FAILURE_SHOTS, `failure-${failed}.png`);
      try {
        await page.screenshot({ path: shot, fullPage: true, timeout: 5_000 });
        console.log(`        at ${page.url()}; screenshot ${shot}`);
      } catch (_) { shot = ''; }
    }
    failures.push({ what, message, shot });
    throw new StepFailed(what);
  }
}

async function scenario(name, run) {
  console.log(`\n# ${name}`);
  try {
    await run();
  } catch (error) {
    if (!(error instanceof StepFailed)) {
      failed += 1;
      failures.push({ what: name, message: String(error && error.stack ? error.stack : error) });
      console.log(`  FAIL  ${name}: ${error && error.stack ? error.stack : error}`);
    }
    console.log(`  (the rest of "${name}" is skipped)`);
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

// ---------- page helpers ----------

async function newPage(browser, label, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport, locale: 'en-GB', timezoneId: 'Europe/London' });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  const errors = [];
  pageErrors.set(page, errors);
  page.on('pageerror', (error) => errors.push(`${label}: uncaught ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && /Content.Security.Policy|Refused to/i.test(message.text())) {
      errors.push(`${label}: ${message.text()}`);
    }
  });
  return page;
}

// No uncaught script error and no CSP violation so far on `page`.
async function noScriptErrors(page) {
  const errors = pageErrors.get(page) || [];
  assert(errors.length === 0, `the page reported:\n${errors.join('\n')}`);
}

async function waitForPath(page, path) {
  await page.waitForFunction((p) => location.pathname === p, path, { timeout: TIMEOUT })
    .catch(async () => { throw new Error(`expected to be on ${path}, but the page is on ${new URL(page.url()).pathname}`); });
}

// Waits until the element `selector` (looked up afresh each time, as live
// updates re-render rows) has text matching `pattern`.
async function waitForText(page, selector, pattern, within = TIMEOUT) {
  const re = typeof pattern === 'string' ? pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : pattern.source;
  const flags = typeof pattern === 'string' ? '' : pattern.flags;
  try {
    await page.waitForFunction(({ selector, re, flags }) => {
      const el = document.querySelector(selector);
      return !!el && new RegExp(re, flags).test(el.innerText || el.textContent || '');
    }, { selector, re, flags }, { timeout: within });
  } catch (error) {
    const text = await page.evaluate((s) => { const el = document.querySelector(s); return el ? (el.innerText || el.textContent) : null; }, selector)
      .catch(() => '(page gone)');
    throw new Error(`waited ${within} ms for ${pattern} in ${selector}; ${text === null ? 'there is no such element' : `its text is: ${String(text).replace(/\s+/g, ' ').slice(0, 300)}`}`);
  }
}

// Every body row of the table `selector` spans as many columns as its header
// (a row with more or fewer cells pushes its buttons out of their column).
async function rowsFitTheHeader(page, selector) {
  const { columns, misfits } = await page.evaluate((sel) => {
    const table = document.querySelector(sel);
    if (!table) return { columns: 0, misfits: ['there is no such table'] };
    const width = (tr) => [...tr.cells].reduce((n, cell) => n + (cell.colSpan || 1), 0);
    const head = table.tHead && table.tHead.rows[0];
    if (!head) return { columns: 0, misfits: [] };
    const columns = width(head);
    const misfits = [...table.tBodies].flatMap((body) => [...body.rows])
      .filter((tr) => width(tr) !== columns)
      .map((tr) => `row ${tr.dataset.bed || tr.dataset.referral || tr.dataset.ward || tr.rowIndex} has ${width(tr)}`);
    return { columns, misfits };
  }, selector);
  assert(misfits.length === 0, `${selector}'s header has ${columns} columns, but ${misfits.slice(0, 5).join('; ')}${misfits.length > 5 ? ` (and ${misfits.length - 5} more rows)` : ''}`);
}

const bedSel = (bed) => `#beds tr[data-bed="${bed}"]`;
const bedRow = (page, bed) => page.locator(bedSel(bed));
const panel = (page) => page.locator('#panel');
const form = (page, command) => page.locator(`#panel form[data-command="${command}"]`);
const field = (page, command, name) => form(page, command).locator(`[name="${name}"]`);

async function isLive(page) {
  await page.waitForFunction(() => (document.querySelector('#live')?.textContent || '').trim() === 'Live', null, { timeout: TIMEOUT })
    .catch(async () => {
      const text = await page.locator('#live').textContent().catch(() => '(no #live)');
      throw new Error(`#live says "${text}", not "Live"`);
    });
}

async function devSignIn(page, role, scope, name) {
  await page.goto(`${BASE}/`);
  await page.locator('#dev-sign-in').waitFor();
  await page.selectOption('#dev-role', role);
  await page.fill('#dev-scope', scope);
  await page.fill('#dev-name', name);
  await page.click('#dev-sign-in');
}

async function shot(page, name) {
  // Nothing half-loaded in a screenshot: wait for the page's live stream.
  await isLive(page);
  await page.screenshot({ path: join(SHOTS, name), fullPage: true });
}

// Every input, select and textarea in `scope` has a label.
async function everyFieldLabelled(scope) {
  const unlabelled = await scope.evaluate((root) => [...root.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter((el) => {
      if (el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')) return false;
      if (el.closest('label')) return false;
      return !(el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`));
    })
    .map((el) => `${el.tagName.toLowerCase()}[name=${el.name || '?'}]#${el.id || '?'}`));
  assert(unlabelled.length === 0, `fields without a label: ${unlabelled.join(', ')}`);
}

// After a successful admission the panel closes (the page closes it a
// moment later; wait for that, so it cannot close the next panel opened).
async function admitFormGone(page) {
  await page.waitForFunction(() => !document.querySelector('#panel form[data-command="admit"]'), null, { timeout: TIMEOUT })
    .catch(() => { throw new Error('the admit form is still open after the patient showed on the ward'); });
}

async function admitThroughForm(page, person) {
  await bedRow(page, person.bed).locator('button[data-action="admit"]').click();
  await form(page, 'admit').waitFor();
  await field(page, 'admit', 'nhs_number').fill(person.nhs);
  await field(page, 'admit', 'family_name').fill(person.family);
  await field(page, 'admit', 'given_name').fill(person.given);
  await field(page, 'admit', 'date_of_birth').fill(person.dob);
  await form(page, 'admit').locator('button[type="submit"]').click();
}

// ---------- the run ----------

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  .catch((error) => {
    console.log(`FAIL  could not launch Chromium at ${CHROMIUM}: ${error.message}`);
    process.exit(1);
  });
console.log(`Chromium ${browser.version()} against ${BASE}; screenshots in ${SHOTS}`);

const ward = await newPage(browser, 'ward A');

await scenario('1. Development sign-in as a ward of POOLE, then to ward W1, live', async () => {
  await step('the sign-in page offers a token box and the development sign-in', async () => {
    await ward.goto(`${BASE}/`);
    await ward.locator('#token').waitFor();
    await ward.locator('#sign-in').waitFor();
    await ward.locator('#dev-sign-in').waitFor();
    await ward.screenshot({ path: join(SHOTS, 'sign-in.png'), fullPage: true });
  }, ward);
  await step('the sign-in page labels every field', () => everyFieldLabelled(ward.locator('main')), ward);
  await step('development sign-in (ward, POOLE) lands on /hospital/POOLE', async () => {
    await devSignIn(ward, 'ward', 'POOLE', 'Ward Sister A');
    await waitForPath(ward, '/hospital/POOLE');
  }, ward);
  await step('the header shows who is signed in, and a sign-out button', async () => {
    await waitForText(ward, '#who', /Ward Sister A/);
    await waitForText(ward, '#who', /ward/);
    await ward.locator('#sign-out').waitFor({ state: 'visible' });
  }, ward);
  await step('the hospital page links to ward W1, and the link opens /ward/W1', async () => {
    await ward.locator('#wards a[href="/ward/W1"]').click();
    await waitForPath(ward, '/ward/W1');
  }, ward);
  await step('#beds has a row per bed (30)', async () => {
    await ward.waitForFunction(() => document.querySelectorAll('#beds tr[data-bed]').length === 30, null, { timeout: TIMEOUT })
      .catch(async () => { throw new Error(`#beds has ${await ward.locator('#beds tr[data-bed]').count()} bed rows`); });
  }, ward);
  await step('#live says Live', () => isLive(ward), ward);
  await step(`bed 1 shows the seeded patient ${SEED_FAMILY} with an Actions button, and their referral`, async () => {
    await waitForText(ward, bedSel(1), SEED_FAMILY);
    await waitForText(ward, bedSel(1), /REAB/);
    await bedRow(ward, 1).locator('button[data-action="open"]').waitFor();
  }, ward);
  await step('a free bed (2) has an Admit button', () => bedRow(ward, 2).locator('button[data-action="admit"]').waitFor(), ward);
  await step('status is text, not only colour (seeded overdue EDD, no criteria to reside, delay days)', async () => {
    await waitForText(ward, '#beds', /Overdue/);
    await waitForText(ward, '#beds', /No criteria to reside/);
    await waitForText(ward, '#beds', /delay day/);
  }, ward);
  await step('every bed row, free or occupied, lines up with the header\'s columns', () => rowsFitTheHeader(ward, '#beds'), ward);
});

await scenario('2. Admit a patient through the admit form', async () => {
  const p = PEOPLE.form;
  await step(`the admit form for bed ${p.bed} is prefilled (bed, admitted at now) with date inputs`, async () => {
    await bedRow(ward, p.bed).locator('button[data-action="admit"]').click();
    await form(ward, 'admit').waitFor();
    const bed = await field(ward, 'admit', 'bed').inputValue();
    assert(bed === p.bed, `bed is "${bed}", expected "${p.bed}"`);
    const admittedAt = field(ward, 'admit', 'admitted_at');
    assert(await admittedAt.getAttribute('type') === 'datetime-local', 'admitted_at is not a datetime-local input');
    assert(/^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(await admittedAt.inputValue()), 'admitted_at is not prefilled with now');
    assert(await field(ward, 'admit', 'date_of_birth').getAttribute('type') === 'date', 'date_of_birth is not a date input');
  }, ward);
  await step('the admit panel labels every field', () => everyFieldLabelled(panel(ward)), ward);
  await step(`admitting ${p.given} ${p.family} (NHS ${p.nhs}) shows them in bed ${p.bed}`, async () => {
    await field(ward, 'admit', 'nhs_number').fill(p.nhs);
    await field(ward, 'admit', 'family_name').fill(p.family);
    await field(ward, 'admit', 'given_name').fill(p.given);
    await field(ward, 'admit', 'date_of_birth').fill(p.dob);
    await form(ward, 'admit').locator('button[type="submit"]').click();
    await waitForText(ward, bedSel(p.bed), p.family);
    await bedRow(ward, p.bed).locator('button[data-action="open"]').waitFor();
    await admitFormGone(ward);
  }, ward);
});

await scenario('3. An API error shows next to its field', async () => {
  await step(`admitting NHS number ${INVALID_NHS} (fails Modulus 11) shows the error at nhs_number`, async () => {
    await ward.keyboard.press('Escape');
    await admitThroughForm(ward, { nhs: INVALID_NHS, family: 'Invalid', given: 'Number', dob: '1960-01-01', bed: '3' });
    const error = form(ward, 'admit').locator('.field-error[data-for="nhs_number"]');
    await error.waitFor({ state: 'visible' });
    const text = (await error.innerText()).trim();
    assert(text.length > 0, 'the field error is visible but empty');
    console.log(`        (it says: "${text}")`);
  }, ward);
  await step('the field is marked invalid and bed 3 stays free', async () => {
    const invalid = await field(ward, 'admit', 'nhs_number').getAttribute('aria-invalid');
    assert(invalid === 'true', `nhs_number has aria-invalid=${invalid}`);
    await bedRow(ward, 3).locator('button[data-action="admit"]').waitFor();
  }, ward);
  await step('Escape closes the panel', async () => {
    await ward.keyboard.press('Escape');
    await panel(ward).waitFor({ state: 'hidden' });
  }, ward);
});

await scenario('8. Keyboard only: admit with Tab, typing and Enter', async () => {
  const p = PEOPLE.keyboard;
  await step(`Enter on bed ${p.bed}'s Admit button opens the admit form with the NHS number focused`, async () => {
    await bedRow(ward, p.bed).locator('button[data-action="admit"]').focus();
    await ward.keyboard.press('Enter');
    await form(ward, 'admit').waitFor();
    await ward.waitForFunction(() => document.activeElement && document.activeElement.name === 'nhs_number', null, { timeout: TIMEOUT })
      .catch(async () => {
        const focused = await ward.evaluate(() => `${document.activeElement?.tagName} ${document.activeElement?.name || document.activeElement?.id || ''}`);
        throw new Error(`focus is on ${focused}, not the NHS number`);
      });
  }, ward);
  await step(`typing the fields with Tab between them and Enter admits ${p.family}`, async () => {
    await ward.keyboard.type(p.nhs);
    await ward.keyboard.press('Tab');
    await ward.keyboard.type(p.family);
    await ward.keyboard.press('Tab');
    await ward.keyboard.type(p.given);
    await ward.keyboard.press('Tab');
    // A date input takes its parts as typed digits (day and month alike here, year last).
    const [y, m, d] = p.dob.split('-');
    await ward.keyboard.type(`${d}${m}${y}`);
    const dob = await field(ward, 'admit', 'date_of_birth').inputValue();
    assert(dob === p.dob, `typing the date of birth gave "${dob}", expected ${p.dob}`);
    await ward.keyboard.press('Enter');
    await waitForText(ward, bedSel(p.bed), p.family);
    await admitFormGone(ward);
  }, ward);
});

const other = await newPage(browser, 'ward B');

await scenario('4. A change from another session shows live and keeps what is being typed', async () => {
  const note = 'Daughter will confirm the key safe code tomorrow';
  await step(`session A opens bed 1's panel and types a delay note`, async () => {
    await bedRow(ward, 1).locator('button[data-action="open"]').click();
    await field(ward, 'delay', 'note').waitFor();
    await field(ward, 'delay', 'note').click();
    await ward.keyboard.type(note);
    await ward.evaluate(() => { window.__notReloaded = true; });
  }, ward);
  await step('the ward panel labels every field', () => everyFieldLabelled(panel(ward)), ward);
  await step('the panel has a form for every ward command on an open spell', async () => {
    for (const command of ['edd', 'review', 'pathway', 'delay', 'raise', 'transfer', 'discharge', 'withdraw', 'cancel-admission']) {
      await form(ward, command).waitFor({ state: 'attached', timeout: 2_000 })
        .catch(() => { throw new Error(`no form[data-command="${command}"] in the panel`); });
      await form(ward, command).locator('button[type="submit"]').waitFor({ state: 'attached', timeout: 1_000 })
        .catch(() => { throw new Error(`form[data-command="${command}"] has no submit button`); });
    }
  }, ward);
  await step('with a referral active, the panel says to withdraw it before cancelling the admission', () =>
    panel(ward).locator('#cancel-admission-hint').waitFor({ state: 'attached', timeout: 2_000 }), ward);
  await step('screenshot of the ward with the actions panel open', () => shot(ward, 'ward-actions.png'), ward);
  const p = PEOPLE.other;
  await step('session B signs in (ward, POOLE) and opens ward W1', async () => {
    await devSignIn(other, 'ward', 'POOLE', 'Discharge Coordinator B');
    await waitForPath(other, '/hospital/POOLE');
    await other.locator('#wards a[href="/ward/W1"]').click();
    await waitForPath(other, '/ward/W1');
    await isLive(other);
  }, other);
  await step(`session B admits ${p.family} to bed ${p.bed}`, async () => {
    await admitThroughForm(other, p);
    await waitForText(other, bedSel(p.bed), p.family);
    await admitFormGone(other);
  }, other);
  await step(`session A shows ${p.family} in bed ${p.bed} within ${LIVE_WITHIN / 1000} s, without a reload`, async () => {
    await waitForText(ward, bedSel(p.bed), p.family, LIVE_WITHIN);
    assert(await ward.evaluate(() => window.__notReloaded === true), 'session A reloaded the page');
  }, ward);
  await step('session A still has the panel open with the typed note, and the note still has focus', async () => {
    await panel(ward).waitFor({ state: 'visible', timeout: 1_000 });
    const value = await field(ward, 'delay', 'note').inputValue();
    assert(value === note, `the note says "${value}", expected "${note}"`);
    const focused = await ward.evaluate(() => document.activeElement && document.activeElement.name);
    assert(focused === 'note', `focus moved to ${focused}`);
  }, ward);
  await step('recording the delay shows it on bed 1 (and the panel offers to resolve it)', async () => {
    await form(ward, 'delay').locator('button[type="submit"]').click();
    await form(ward, 'resolve').first().waitFor();
    await waitForText(ward, bedSel(1), /Awaiting|\d/);
  }, ward);
  await step('a criteria-to-reside review of "false" shows "No criteria to reside" on bed 1', async () => {
    await field(ward, 'review', 'meets_criteria_to_reside').selectOption('false');
    await form(ward, 'review').locator('button[type="submit"]').click();
    await waitForText(ward, bedSel(1), /No criteria to reside/);
  }, ward);
  await step('no script errors or CSP violations on either ward page', async () => {
    await noScriptErrors(ward);
    await noScriptErrors(other);
  }, ward);
  await other.context().close();
});

const team = await newPage(browser, 'team');

await scenario('5. A team acknowledges and accepts the seeded referral', async () => {
  const rowSel = `#referrals tr[data-referral="${SEED_REFERRAL}"]`;
  const row = team.locator(rowSel);
  await step('development sign-in (team, REAB) lands on /team/REAB', async () => {
    await devSignIn(team, 'team', 'REAB', 'Reablement Coordinator');
    await waitForPath(team, '/team/REAB');
    await isLive(team);
  }, team);
  await step(`the seeded referral shows ${SEED_FAMILY}, "requested", its age and an SLA text`, async () => {
    await waitForText(team, rowSel, SEED_FAMILY);
    await waitForText(team, rowSel, /requested/);
    await waitForText(team, rowSel, /min left|Breached/);
    await waitForText(team, rowSel, /\d+ ?(h|min)/);
  }, team);
  await step('every referral row lines up with the header\'s columns', () => rowsFitTheHeader(team, '#referrals'), team);
  await step('the team page labels every field', () => everyFieldLabelled(team.locator('main')), team);
  await step('screenshot of the team page', () => shot(team, 'team.png'), team);
  await step('Acknowledge turns it "received"', async () => {
    await row.locator('button[data-action="acknowledge"]').click();
    await waitForText(team, rowSel, /received/);
  }, team);
  await step('Accept opens a form with a planned start date; accepting turns it "accepted"', async () => {
    await row.locator('button[data-action="accept"]').click();
    await form(team, 'accept').waitFor();
    const planned = field(team, 'accept', 'planned_start');
    assert(await planned.getAttribute('type') === 'date', 'planned_start is not a date input');
    const tomorrow = new Date(Date.now() + 24 * 3600 * 1000).toISOString().slice(0, 10);
    await planned.fill(tomorrow);
    await form(team, 'accept').locator('button[type="submit"]').click();
    await waitForText(team, rowSel, /accepted/);
  }, team);
  await step('an accepted referral offers Start care', () => row.locator('button[data-action="start-care"]').waitFor(), team);
  await step('the ward page shows the referral accepted, live', () => waitForText(ward, bedSel(1), /accepted/, LIVE_WITHIN), ward);
  await step('no script errors or CSP violations on the team page', () => noScriptErrors(team), team);
});

const system = await newPage(browser, 'system');

await scenario('6. System leaders: hospitals, teams and charts, no patient names', async () => {
  await step('development sign-in (system) lands on /system', async () => {
    await devSignIn(system, 'system', '', 'Flow Lead');
    await waitForPath(system, '/system');
    await isLive(system);
  }, system);
  await step('#hospitals lists POOLE and DCH; #teams lists the teams', async () => {
    await waitForText(system, '#hospitals', /Poole Hospital/);
    await waitForText(system, '#hospitals', /Dorset County Hospital/);
    await waitForText(system, '#teams', /Reablement East/);
  }, system);
  await step('the rows of #hospitals and #teams line up with their headers', async () => {
    await rowsFitTheHeader(system, '#hospitals');
    await rowsFitTheHeader(system, '#teams');
  }, system);
  await step('the three charts are SVGs, each with a table of its figures', async () => {
    for (const id of ['chart-nctr', 'chart-discharges', 'chart-delay-days']) {
      await system.locator(`#${id} svg`).waitFor({ state: 'visible' });
      await system.locator(`#${id} table`).waitFor({ state: 'attached' });
    }
  }, system);
  await step(`the page shows no patient's name (${ALL_FAMILIES.join(', ')}) or NHS number`, async () => {
    const text = await system.evaluate(() => document.documentElement.innerText + document.documentElement.outerHTML);
    const leaked = ALL_FAMILIES.filter((f) => text.includes(f));
    assert(leaked.length === 0, `the system page shows ${leaked.join(', ')}`);
    const numbers = Object.values(PEOPLE).map((p) => p.nhs).filter((n) => text.includes(n) || text.includes(`${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6)}`));
    assert(numbers.length === 0, `the system page shows NHS numbers ${numbers.join(', ')}`);
  }, system);
  await step('screenshot of the system page', () => shot(system, 'system.png'), system);
  await step('no script errors or CSP violations on the system page', () => noScriptErrors(system), system);
});

await scenario('Hospital page (as the ward)', async () => {
  await step('the ward closes its panel and follows the link to its hospital', async () => {
    await ward.keyboard.press('Escape');
    await panel(ward).waitFor({ state: 'hidden' });
    await ward.locator('a[href="/hospital/POOLE"]').first().click();
    await waitForPath(ward, '/hospital/POOLE');
    await isLive(ward);
  }, ward);
  await step('#wards has a row for W1 and W2 with occupancy, NCTR and delay days', async () => {
    await waitForText(ward, '#wards', /Ward W1/);
    await waitForText(ward, '#wards', /Ward W2/);
    await waitForText(ward, '#wards', /\d+\s*\/\s*30/);
  }, ward);
  await step('#delays-by-reason and #pathways are shown, and the three charts', async () => {
    await waitForText(ward, '#delays-by-reason', /\d/);
    await waitForText(ward, '#pathways', /P1/);
    for (const id of ['chart-nctr', 'chart-discharges', 'chart-delay-days']) {
      await ward.locator(`#${id} svg`).waitFor({ state: 'visible' });
      await ward.locator(`#${id} table`).waitFor({ state: 'attached' });
    }
  }, ward);
  await step('the rows of #wards, #delays-by-reason and #pathways line up with their headers', async () => {
    for (const table of ['#wards', '#delays-by-reason', '#pathways']) await rowsFitTheHeader(ward, table);
  }, ward);
  await step('screenshot of the hospital page', () => shot(ward, 'hospital.png'), ward);
});

await scenario('9. Tablet width (820 x 1180)', async () => {
  await step('back on ward W1, screenshot of the ward page', async () => {
    await ward.locator('#wards a[href="/ward/W1"]').click();
    await waitForPath(ward, '/ward/W1');
    await waitForText(ward, bedSel(1), SEED_FAMILY);
    await shot(ward, 'ward.png');
  }, ward);
  await step('at 820 px wide the page does not scroll sideways (the bed table may scroll in its box)', async () => {
    await ward.setViewportSize({ width: 820, height: 1180 });
    await ward.waitForFunction(() => window.innerWidth === 820, null, { timeout: TIMEOUT });
    const sizes = await ward.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    assert(sizes.scroll <= sizes.client, `the page is ${sizes.scroll} px wide in a ${sizes.client} px window`);
  }, ward);
  await step('at 820 px the admit panel fits the window and its submit button can be reached', async () => {
    await bedRow(ward, 6).locator('button[data-action="admit"]').click();
    await form(ward, 'admit').waitFor();
    const box = await panel(ward).boundingBox();
    assert(box && box.x >= 0 && box.x + box.width <= 821, `the panel spans x ${box && box.x}..${box && box.x + box.width}`);
    const submit = form(ward, 'admit').locator('button[type="submit"]');
    await submit.scrollIntoViewIfNeeded();
    await submit.waitFor({ state: 'visible' });
    const sizes = await ward.evaluate(() => ({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth }));
    assert(sizes.scroll <= sizes.client, `with the panel open the page is ${sizes.scroll} px wide in a ${sizes.client} px window`);
    await ward.keyboard.press('Escape');
  }, ward);
  await step('no script errors or CSP violations on the ward page', () => noScriptErrors(ward), ward);
});

const admin = await newPage(browser, 'admin');

await scenario('7. Sign in by pasting a token', async () => {
  await step('a token that is not one shows an error and stays on the sign-in page', async () => {
    await admin.goto(`${BASE}/`);
    await admin.fill('#token', 'not-a-token');
    await admin.click('#sign-in');
    await admin.locator('.form-error').first().waitFor({ state: 'visible' });
    await waitForPath(admin, '/');
  }, admin);
  await step('the admin token signs in and lands on a page without error', async () => {
    await admin.fill('#token', ADMIN_TOKEN);
    await admin.click('#sign-in');
    await admin.waitForFunction(() => location.pathname !== '/', null, { timeout: TIMEOUT })
      .catch(() => { throw new Error('still on / after signing in'); });
    await waitForText(admin, '#who', /admin/);
    const errors = await admin.locator('.form-error:visible').count();
    assert(errors === 0, 'an error is shown after signing in');
    const token = await admin.evaluate(() => sessionStorage.getItem('baton.token'));
    assert(token === ADMIN_TOKEN, 'the token is not in sessionStorage["baton.token"]');
  }, admin);
  await step('Sign out returns to the sign-in page and forgets the token', async () => {
    await admin.click('#sign-out');
    await admin.locator('#token').waitFor();
    await waitForPath(admin, '/');
    const token = await admin.evaluate(() => sessionStorage.getItem('baton.token'));
    assert(token === null, 'the token is still in sessionStorage');
  }, admin);
  await step('no script errors or CSP violations on the sign-in page', () => noScriptErrors(admin), admin);
});

await browser.close();

console.log(`\n${passed} passed, ${failed} failed`);
if (failed > 0) {
  console.log('\nFailed:');
  for (const f of failures) console.log(`- ${f.what}: ${f.message.split('\n')[0]}${f.shot ? ` (${f.shot})` : ''}`);
  process.exit(1);
}
