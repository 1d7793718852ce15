// Baton's pages: plain JavaScript, no build step, every asset served by
// baton. One shell (index.html) routes by path. Live updates (server-sent
// events) patch rows in place, keyed by bed or referral, so a row nobody
// changed keeps its focus; forms live in a side panel whose read-only parts
// are updated in place and whose forms live updates never touch, so nothing
// a user is typing is lost.

const main = document.getElementById('main');
const panel = document.getElementById('panel');
const live = document.getElementById('live');
const notice = document.getElementById('notice');
let source = null;
let session = null;
// Why the last session ended, shown on the sign-in page.
let endedBecause = null;
const reference = {};

// ---------- small helpers ----------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'text') el.textContent = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.setAttribute('class', value);
    else if (key === 'text') el.textContent = value;
    else el.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) if (child) el.append(child);
  return el;
}

const tag = (text, kind) => h('span', { class: `tag ${kind || ''}` }, text);

// Typing a long note sends no request, yet is not idleness: while the user
// works in the page, the session is touched now and then, so only a page
// nobody uses is signed out (an open live board does not count either way).
let lastActivity = 0;
let lastRequest = Date.now();
for (const kind of ['keydown', 'pointerdown', 'input']) {
  document.addEventListener(kind, () => { lastActivity = Date.now(); }, { passive: true, capture: true });
}
setInterval(() => {
  if (!session) return;
  const idle = (session.idle_seconds || 900) * 1000;
  if (lastActivity > lastRequest && Date.now() - lastRequest > idle / 3) api('GET', '/api/v1/session');
}, 2000);

async function api(method, path, body, contentType) {
  lastRequest = Date.now();
  const headers = { 'Accept': 'application/json' };
  // The session cookie goes by itself; a change carries the session's
  // anti-forgery token, which no other site can read.
  if (method !== 'GET' && session && session.csrf_token) headers['X-CSRF-Token'] = session.csrf_token;
  if (body !== undefined) headers['Content-Type'] = contentType || 'application/json';
  // A body of another type (a census's CSV) goes as it is.
  const sent = body === undefined || contentType ? body : JSON.stringify(body);
  let response;
  try {
    response = await fetch(path, { method, headers, body: sent });
  } catch (error) {
    return { ok: false, status: 0, body: { detail: 'Baton cannot be reached. Check the connection and try again.' } };
  }
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (response.status === 401 && path !== '/api/v1/session' && session) {
    // The session ended: sign in again here, and come back to this page.
    sessionEnded();
  } else if (response.status === 403 && data && data.type === '/problems/access-revoked' && session) {
    sessionEnded('An administrator has withdrawn your access to Baton. Ask them if you think this is wrong.');
  }
  return { ok: response.ok, status: response.status, body: data };
}

// A read that includes the caller's own command (the API waits for it).
const withToken = (path, consistency) => consistency
  ? `${path}${path.includes('?') ? '&' : '?'}consistency_token=${encodeURIComponent(consistency)}`
  : path;

// The session ended under the page (idle too long, signed out elsewhere,
// access withdrawn): say so on the sign-in page, which brings the user back.
function sessionEnded(why) {
  if (!session) return;
  const minutes = Math.round((session.idle_seconds || 900) / 60);
  endedBecause = why || `Your session has ended (after ${minutes} minute${minutes === 1 ? '' : 's'} without activity, or signed out elsewhere). Sign in again to carry on.`;
  session = null;
  route();
}

function problemText(answer, what) {
  const problem = answer.body || {};
  const detail = problem.detail || problem.title || `the request failed (${answer.status || 'no answer'})`;
  const hint = answer.status === 409 || answer.status === 422
    ? ' It may have changed elsewhere meanwhile: the list shows its current state.' : '';
  return `${what}: ${detail}.${hint}`.replace('..', '.');
}

function go(path) {
  history.pushState({}, '', path);
  route();
}

function localNow() {
  const d = new Date();
  d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
  return d.toISOString().slice(0, 16);
}

function today(offsetDays = 0) {
  const d = new Date();
  d.setDate(d.getDate() + offsetDays);
  d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
  return d.toISOString().slice(0, 10);
}

// datetime-local values have no zone: send them as RFC 3339 with an offset.
const instant = (value) => value ? new Date(value).toISOString() : value;

const asDate = (value) => new Date(value.length === 10 ? `${value}T12:00:00` : value);

function formatDate(value) {
  if (!value) return '';
  return asDate(value).toLocaleDateString('en-GB', { day: 'numeric', month: 'short' });
}

function longDate(value) {
  if (!value) return '';
  return asDate(value).toLocaleDateString('en-GB', { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });
}

function formatWhen(value) {
  if (!value) return '';
  const d = new Date(value);
  return `${d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' })}, ${d.toLocaleDateString('en-GB', { day: 'numeric', month: 'short' })}`;
}

function nhs(n) {
  return n && n.length === 10 ? `${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6)}` : n;
}

const words = (code) => String(code || '').replaceAll('_', ' ');

function debounce(fn, ms) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

// ---------- confirmations ----------

// A confirmation stays on screen for 10 s (or until the next one) and is
// announced by the #notice status region.
let noticeTimer = null;
function notify(text) {
  clearTimeout(noticeTimer);
  notice.textContent = text;
  noticeTimer = setTimeout(() => { notice.textContent = ''; }, 10_000);
}

// ---------- actions that send ----------

// A button that sends is marked busy (aria-disabled, which keeps its focus)
// from the first click until the page shows the result, so a double click
// sends once. The set survives a row being re-rendered meanwhile.
const busy = new Set();

function setBusy(key, on) {
  if (on) busy.add(key); else busy.delete(key);
  for (const el of document.querySelectorAll(`[data-key="${CSS.escape(key)}"]`)) {
    if (on) el.setAttribute('aria-disabled', 'true'); else el.removeAttribute('aria-disabled');
  }
}

async function guarded(key, fn) {
  if (busy.has(key)) return undefined;
  setBusy(key, true);
  try {
    return await fn();
  } finally {
    setBusy(key, false);
  }
}

// A button with a page-wide key (for focus to come back to it, and for the
// busy guard). `onpress` gets the button; presses while busy are ignored.
function actionButton(label, { key, action, aria, kind, onpress }) {
  const button = h('button', {
    type: 'button', class: kind || null, 'data-key': key, 'data-action': action, 'aria-label': aria,
    'aria-disabled': busy.has(key) ? 'true' : null,
  }, label);
  button.addEventListener('click', (event) => {
    event.preventDefault();
    if (button.getAttribute('aria-disabled') === 'true') return;
    onpress(button);
  });
  return button;
}

// Errors of an action in a row: one element per row, kept across the row's
// re-renders (so it is announced once, and stays until the next action).
const rowMessages = new Map();
function rowMessage(rowKey) {
  let el = rowMessages.get(rowKey);
  if (!el) {
    el = h('p', { class: 'row-error', role: 'alert' });
    rowMessages.set(rowKey, el);
  }
  return el;
}

// ---------- rows patched in place ----------

function place(parent, child, before) {
  if (child.parentNode === parent && parent.moveBefore) {
    try { parent.moveBefore(child, before); return; } catch (_) { /* fall back */ }
  }
  parent.insertBefore(child, before);
}

// Shows `items` as the rows of `tbody`, in order, keyed by `keyOf`. A row
// whose data did not change is kept as it is (focus and all); a changed row
// is rebuilt, and focus inside it moves to the same control in the new row
// (or the row's first control if that one is gone).
function patchRows(tbody, items, keyOf, build) {
  const old = tbody._rows || new Map();
  const next = new Map();
  const active = document.activeElement;
  let focus = null;
  for (const [key, entry] of old) {
    if (entry.tr.contains(active) && active !== document.body) focus = { rowKey: key, key: active.dataset && active.dataset.key };
  }
  const order = [];
  for (const item of items) {
    const key = keyOf(item);
    const sig = JSON.stringify(item);
    let entry = old.get(key);
    if (!entry || entry.sig !== sig) {
      const tr = build(item);
      tr.dataset.rowKey = key;
      if (entry) tbody.replaceChild(tr, entry.tr);
      entry = { sig, tr };
    }
    next.set(key, entry);
    order.push(entry.tr);
  }
  for (const [key, entry] of old) if (!next.has(key) && entry.tr.parentNode === tbody) entry.tr.remove();
  for (const child of [...tbody.children]) if (!order.includes(child)) child.remove();
  order.forEach((tr, i) => { if (tbody.children[i] !== tr) place(tbody, tr, tbody.children[i] || null); });
  tbody._rows = next;
  if (focus && (!document.activeElement || document.activeElement === document.body || !document.activeElement.isConnected)) {
    restoreFocus(focus);
  }
}

// Focus the control `target.key`, else the first control of the row
// `target.rowKey`, else the control `target.fallback`; false when none of
// them can take focus.
function restoreFocus(target) {
  if (!target) return false;
  const take = (el) => {
    if (!el || !el.getClientRects().length) return false;
    el.focus();
    return document.activeElement === el;
  };
  const byKey = (key) => key && document.querySelector(`[data-key="${CSS.escape(key)}"]`);
  if (take(byKey(target.key))) return true;
  const row = target.rowKey && document.querySelector(`[data-row-key="${CSS.escape(target.rowKey)}"]`);
  if (take(row && row.querySelector('button, a[href], [tabindex]'))) return true;
  return take(byKey(target.fallback));
}

// ---------- live updates ----------

// A board shown as live while it is stale is the most dangerous thing Baton
// can do: the server says how current its boards are with every event and
// every 5 s, and the page says "not up to date since HH:MM" whenever the
// server says they are behind, or when it has heard nothing for 15 s.
const stale = document.getElementById('stale');
const SILENT_AFTER_MS = 15000;
let freshness = { current: false, up_to_date_at: null };
let lastHeard = 0;
let freshnessTimer = null;

function clock(value) {
  return new Date(value).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
}

let subscribedAt = 0;

function showFreshness() {
  const last = lastHeard || subscribedAt;
  const silent = last > 0 && Date.now() - last > SILENT_AFTER_MS;
  // Nothing heard yet: "Connecting…" says enough for 15 s, and a banner
  // flashed at every connect would be announced to screen readers.
  if (lastHeard === 0 && !silent) {
    stale.hidden = true;
    return;
  }
  if (freshness.current && !silent) {
    stale.hidden = true;
    stale.textContent = '';
    if (source && source.readyState === EventSource.OPEN) { live.textContent = 'Live'; live.className = 'live'; }
    return;
  }
  const since = freshness.current ? new Date(lastHeard).toISOString() : freshness.up_to_date_at;
  const why = silent ? 'Baton has not been heard from since then' : 'Baton is catching up with the record';
  const text = since
    ? `Not up to date since ${clock(since)}. ${why}: changes recorded after ${clock(since)} may be missing here. Check before acting on a bed.`
    : `Not up to date: ${why}. Changes may be missing here. Check before acting on a bed.`;
  if (stale.textContent !== text) stale.textContent = text;
  stale.hidden = false;
  live.textContent = since ? `Not up to date since ${clock(since)}` : 'Not up to date';
  live.className = 'live off';
}

function heard(data) {
  lastHeard = Date.now();
  if (data && typeof data.current === 'boolean') freshness = data;
  showFreshness();
}

// `check` reads the board once: a stream refused for good because this
// sign-in may not see the board (403) or it does not exist (404) ends with
// a page that says so, instead of "Reconnecting…" for ever.
function subscribe(board, onBoard, check) {
  if (source) source.close();
  live.textContent = 'Connecting…';
  live.className = 'live off';
  // Authenticated by the session cookie: no token in any URL.
  const url = `/api/v1/boards/stream?board=${encodeURIComponent(board)}`;
  if (!subscribedAt) subscribedAt = Date.now();
  const mine = new EventSource(url);
  source = mine;
  const handle = (event) => {
    try {
      const data = JSON.parse(event.data);
      onBoard(data.board);
      heard(data.freshness);
    } catch (_) { /* keep the last board */ }
  };
  source.addEventListener('board', handle);
  source.addEventListener('change', handle);
  source.addEventListener('signed-out', async () => {
    if (source !== mine) return;
    mine.close();
    // Ended by the idle timeout or sign-out (401), a revocation (403), or a
    // new grant (the session still answers, with the new role): ask.
    const me = await api('GET', '/api/v1/session');
    if (me.status === 401 || me.status === 403) { sessionEnded(me.status === 403 ? 'An administrator has withdrawn your access to Baton. Ask them if you think this is wrong.' : undefined); return; }
    if (me.ok) { session = { ...me.body }; route(); }
  });
  source.addEventListener('freshness', (event) => {
    try { heard(JSON.parse(event.data)); } catch (_) { /* the next one will do */ }
  });
  clearInterval(freshnessTimer);
  freshnessTimer = setInterval(showFreshness, 1000);
  source.onopen = () => { showFreshness(); };
  source.onerror = async () => {
    if (source !== mine) return;
    live.textContent = 'Reconnecting…';
    live.className = 'live off';
    // A stream refused for good (the token expired): sign in again.
    if (mine.readyState === EventSource.CLOSED) {
      const me = await api('GET', '/api/v1/session');
      if (!me.ok || source !== mine) return;
      if (check) {
        const answer = await check();
        if (source !== mine) return;
        if (answer && (answer.status === 403 || answer.status === 404)) { cannotShow(answer, board); return; }
      }
      setTimeout(() => { if (source === mine) subscribe(board, onBoard, check); }, 1000);
    }
  };
}

function unsubscribe() {
  if (source) source.close();
  source = null;
  clearInterval(freshnessTimer);
  freshnessTimer = null;
  lastHeard = 0;
  subscribedAt = 0;
  freshness = { current: false, up_to_date_at: null };
  stale.hidden = true;
  stale.textContent = '';
  live.textContent = '';
  live.className = 'live';
}

// ---------- forms ----------

// A form whose fields are named as the API's JSON fields. `send` gets the
// form's values and answers the API's answer; errors come back next to each
// field. A success says "Saved at HH:MM." in the form's own status line,
// which stays until the form is sent again; fields marked `reset` are
// emptied for the next entry. A form is sent once at a time.
function commandForm({ command, title, fields, submit, send, done: doneText }) {
  const form = h('form', { 'data-command': command, novalidate: true });
  const heading = h('h3', {}, title);
  form._heading = heading;
  form.append(heading);
  const formError = h('p', { class: 'form-error', role: 'alert' });
  const done = h('p', { class: 'done', role: 'status' });
  const resets = [];
  for (const field of fields) {
    const id = `${command}-${field.name}${field.idSuffix || ''}`;
    form.append(h('label', { for: id }, field.label));
    let input;
    if (field.options) {
      input = h('select', { id, name: field.name },
        field.options.map(([value, text]) => h('option', { value }, text)));
    } else if (field.type === 'textarea') {
      input = h('textarea', { id, name: field.name, rows: 3 });
    } else {
      input = h('input', { id, name: field.name, type: field.type || 'text', autocomplete: 'off' });
    }
    if (field.value !== undefined && field.value !== null) input.value = field.value;
    if (field.required) input.required = true;
    if (field.reset) resets.push([input, input.value]);
    form.append(input, h('p', { class: 'field-error', 'data-for': field.name, hidden: true, id: `${id}-error` }));
  }
  const button = h('button', { type: 'submit' }, submit || title);
  form.append(formError, button, done);
  form.addEventListener('input', () => { form.dataset.dirty = '1'; });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (form.dataset.busy) return;
    for (const el of form.querySelectorAll('.field-error')) { el.hidden = true; el.textContent = ''; }
    for (const el of form.querySelectorAll('.invalid')) { el.classList.remove('invalid'); el.removeAttribute('aria-invalid'); el.removeAttribute('aria-describedby'); }
    formError.textContent = '';
    done.textContent = '';
    const values = Object.fromEntries(new FormData(form).entries());
    form.dataset.busy = '1';
    button.setAttribute('aria-disabled', 'true');
    let answer;
    try {
      answer = await send(values, form);
    } catch (error) {
      answer = { ok: false, status: 0, body: { detail: String(error && error.message || error) } };
    } finally {
      delete form.dataset.busy;
      button.removeAttribute('aria-disabled');
    }
    if (answer.ok) {
      for (const [input, value] of resets) input.value = value;
      delete form.dataset.dirty;
      done.textContent = `${typeof doneText === 'function' ? doneText(values) : doneText || 'Saved'} at ${clock(new Date())}.`;
      if (form._afterSave) form._afterSave();
      return;
    }
    showProblem(form, formError, answer);
  });
  return form;
}

function showProblem(form, formError, answer) {
  const problem = answer.body || {};
  let placed = false;
  for (const error of problem.errors || []) {
    const slot = form.querySelector(`.field-error[data-for="${CSS.escape(error.field)}"]`);
    const input = form.querySelector(`[name="${CSS.escape(error.field)}"]`);
    if (slot) {
      slot.textContent = error.message;
      slot.hidden = false;
      placed = true;
    }
    if (input) {
      input.classList.add('invalid');
      input.setAttribute('aria-invalid', 'true');
      if (slot) input.setAttribute('aria-describedby', slot.id);
    }
  }
  if (!placed) {
    formError.textContent = problem.detail || `The request failed (${answer.status}).`;
  } else {
    const first = form.querySelector('.invalid');
    if (first) first.focus();
  }
}

// ---------- the side panel ----------

let panelGeneration = 0;
let panelOpener = null; // { key, rowKey } of the control that opened it
let panelView = null;   // the spell shown, for live updates

// Opens the panel; `opener` (the button pressed) gets focus back when it
// closes, or, if live updates replaced it, the same control in its row.
function openPanel(title, opener, ...content) {
  if (opener !== undefined) {
    panelOpener = opener
      ? { key: opener.dataset.key, rowKey: opener.closest('[data-row-key]')?.dataset.rowKey }
      : null;
  }
  panel.replaceChildren(
    h('button', { class: 'close secondary', type: 'button', onclick: () => closePanel() }, 'Close'),
    h('h2', { id: 'panel-title', tabindex: '-1' }, title),
    ...content.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false),
  );
  panel.setAttribute('aria-labelledby', 'panel-title');
  panel.hidden = false;
  panel.scrollTop = 0;
  panelGeneration += 1;
  panelView = null;
  const first = panel.querySelector('input, select, textarea, form button, button:not(.close)');
  (first || panel.querySelector('button')).focus();
}

function closePanel({ restore = true } = {}) {
  const wasOpen = !panel.hidden;
  panel.hidden = true;
  panel.replaceChildren();
  panelGeneration += 1;
  panelView = null;
  const opener = panelOpener;
  panelOpener = null;
  if (wasOpen && restore && !restoreFocus(opener)) main.focus();
}

document.addEventListener('keydown', (event) => {
  if (event.key !== 'Escape') return;
  const menu = document.querySelector('details.menu[open]');
  if (menu) {
    menu.open = false;
    menu.querySelector('summary').focus();
    return;
  }
  if (!panel.hidden) closePanel();
});

document.addEventListener('click', (event) => {
  for (const menu of document.querySelectorAll('details.menu[open]')) {
    if (!menu.contains(event.target)) menu.open = false;
  }
});

// ---------- reference data ----------

async function loadReference() {
  if (reference.loaded) return;
  const [wards, teams, reasons, hospitals, hubs] = await Promise.all([
    api('GET', '/api/v1/wards'), api('GET', '/api/v1/teams'),
    api('GET', '/api/v1/delay-reasons'), api('GET', '/api/v1/hospitals'), api('GET', '/api/v1/hubs'),
  ]);
  reference.wards = wards.ok ? wards.body : [];
  reference.teams = teams.ok ? teams.body : [];
  reference.reasons = reasons.ok ? reasons.body.reasons : [];
  reference.hospitals = hospitals.ok ? hospitals.body : [];
  reference.hubs = hubs.ok ? hubs.body : [];
  reference.loaded = wards.ok && teams.ok && reasons.ok && hospitals.ok && hubs.ok;
}

const reasonLabel = (code) => (reference.reasons.find((r) => r.code === code) || { label: code }).label;
const wardName = (code) => (reference.wards.find((w) => w.code === code) || { name: code }).name;
const hospitalName = (code) => (reference.hospitals.find((x) => x.code === code) || { name: code }).name;
const teamName = (code) => (reference.teams.find((t) => t.code === code) || { name: code }).name;
const hubName = (code) => ((reference.hubs || []).find((x) => x.code === code) || { name: code }).name;
// The hospitals whose wards a ward sign-in works on: its own, or its trust's.
const myHospitals = (me) => me.trust
  ? reference.hospitals.filter((x) => x.trust === me.trust).map((x) => x.code)
  : [me.hospital];

// ---------- pages that are not there ----------

function describe(me) {
  if (!me) return 'nobody';
  const scope = me.hospital ? ` for ${hospitalName(me.hospital)}` : me.trust ? ` for trust ${me.trust}`
    : me.team ? ` for ${teamName(me.team)}` : me.hub ? ` for ${hubName(me.hub)}` : '';
  return `${me.name} (${me.role}${scope})`;
}

function setTitle(text) {
  document.title = text ? `${text} · Baton` : 'Baton';
}

function notFound() {
  unsubscribe();
  setTitle('Page not found');
  main.replaceChildren(
    h('h1', { id: 'not-found' }, 'Page not found'),
    h('p', {}, `There is no page at ${location.pathname}. Check the address, or go to `,
      h('a', { href: session ? home(session) : '/' }, 'your page'), '.'));
}

function forbidden(what) {
  unsubscribe();
  setTitle('Not available to this sign-in');
  main.replaceChildren(
    h('h1', {}, 'This sign-in cannot see this page'),
    h('p', { id: 'forbidden' }, `You are signed in as ${describe(session)}, which may not see ${what}.`),
    h('p', {}, 'If you need it, sign out and sign in as someone who may, or ask for access. ',
      h('a', { href: home(session) }, 'Go to your page'), '.'));
}

function unavailable(answer, retry) {
  unsubscribe();
  setTitle('Not available');
  main.replaceChildren(
    h('h1', {}, 'This page cannot be shown just now'),
    h('p', { role: 'alert' }, (answer.body && answer.body.detail) || `Baton answered ${answer.status || 'nothing'}.`),
    h('button', { type: 'button', onclick: retry }, 'Try again'));
}

// A board read that failed: say why, in words.
function cannotShow(answer, what) {
  if (answer.status === 403) return forbidden(what);
  if (answer.status === 404) return notFound();
  return unavailable(answer, () => route());
}

// ---------- sign-in ----------

async function signInPage() {
  unsubscribe();
  setTitle('Sign in');
  const dev = await api('GET', '/api/v1/dev/sign-in');
  const options = await api('GET', '/auth/options');
  const provider = options.ok && options.body.provider;
  const tokenBox = h('textarea', { id: 'token', rows: 4, 'aria-describedby': 'token-help' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const going = location.pathname !== '/' ? location.pathname : null;
  // A session is open (its cookie set): read who it is, then go on.
  const signedIn = async (errorSlot) => {
    const me = await api('GET', '/api/v1/session');
    if (!me.ok) {
      errorSlot.textContent = (me.body && me.body.detail) || 'The sign-in was not accepted.';
      return;
    }
    session = me.body;
    endedBecause = null;
    // Back to the page the user was going to (a deep link), else home.
    if (location.pathname !== '/') route(); else go(home(session));
  };
  const signIn = async (value, errorSlot) => {
    const answer = await api('POST', '/auth/session', { token: value.trim() });
    if (!answer.ok) {
      errorSlot.textContent = (answer.body && answer.body.detail) || 'That token was not accepted.';
      return;
    }
    await signedIn(errorSlot);
  };
  const sections = [];
  const signedOut = new URLSearchParams(location.search).get('signed_out');
  if (endedBecause) sections.push(h('p', { class: 'hint', id: 'ended', role: 'alert' }, endedBecause));
  else if (signedOut) sections.push(h('p', { class: 'hint', id: 'ended', role: 'status' }, 'You have signed out of Baton.'));
  if (going) sections.push(h('p', { class: 'hint', id: 'going' }, `Sign in to open ${going}.`));
  if (provider) {
    const back = going ? `${location.pathname}${location.search}` : '/';
    sections.push(h('section', { 'aria-labelledby': 'provider-h' },
      h('h2', { id: 'provider-h' }, 'Sign in with your organisation'),
      h('p', {}, 'Use the account you sign in to your organisation\'s systems with.'),
      h('a', { id: 'provider-sign-in', class: 'button', href: `/auth/login?return_to=${encodeURIComponent(back)}` }, 'Sign in')));
  }
  if (!provider) sections.push(
    h('section', { 'aria-labelledby': 'token-h' },
      h('h2', { id: 'token-h' }, 'Sign in with a token'),
      h('label', { for: 'token' }, 'Token'),
      tokenBox,
      h('p', { id: 'token-help' }, 'Paste the bearer token your organisation issued (or one printed by `baton token`).'),
      error,
      actionButton('Sign in', { key: 'sign-in', action: 'sign-in', onpress: (b) => guarded('sign-in', () => signIn(tokenBox.value, error)) })));
  const tokenButton = !provider && sections[sections.length - 1].querySelector('[data-key="sign-in"]');
  if (tokenButton) tokenButton.id = 'sign-in';
  if (dev.ok && dev.body.enabled) {
    const role = h('select', { id: 'dev-role' },
      ['ward', 'team', 'hub', 'system', 'admin'].map((r) => h('option', { value: r }, r)));
    const scope = h('input', { id: 'dev-scope', type: 'text', value: 'POOLE', 'aria-describedby': 'dev-help' });
    const name = h('input', { id: 'dev-name', type: 'text', value: 'Developer' });
    const devError = h('p', { class: 'form-error', role: 'alert' });
    const hospitals = dev.body.hospitals || [];
    const teams = dev.body.teams || [];
    const trusts = dev.body.trusts || [];
    const hubs = dev.body.hubs || [];
    const scopes = { ward: hospitals[0] || '', team: teams[0] || '', hub: hubs[0] || '', system: '', admin: '' };
    const offered = { ward: [...hospitals, ...trusts], team: teams, hub: hubs };
    scope.value = scopes.ward;
    const known = h('datalist', { id: 'dev-scopes' });
    scope.setAttribute('list', 'dev-scopes');
    const fill = () => known.replaceChildren(...(offered[role.value] || []).map((c) => h('option', { value: c })));
    fill();
    role.addEventListener('change', () => { scope.value = scopes[role.value] || ''; fill(); });
    const devButton = actionButton('Sign in', {
      key: 'dev-sign-in', action: 'dev-sign-in', onpress: () => guarded('dev-sign-in', async () => {
        devError.textContent = '';
        const body = { role: role.value, name: name.value || 'Developer' };
        // A ward's scope is a hospital, or a trust (every hospital it runs).
        if (role.value === 'ward' && trusts.includes(scope.value) && !hospitals.includes(scope.value)) body.trust = scope.value;
        else if (role.value === 'ward') body.hospital = scope.value;
        if (role.value === 'team') body.team = scope.value;
        if (role.value === 'hub') body.hub = scope.value;
        const answer = await api('POST', '/api/v1/dev/sign-in', body);
        if (!answer.ok) {
          devError.textContent = (answer.body && answer.body.detail) || 'Sign-in failed.';
          return;
        }
        await signedIn(devError);
      }),
    });
    devButton.id = 'dev-sign-in';
    sections.push(h('section', { 'aria-labelledby': 'dev-h' },
      h('h2', { id: 'dev-h' }, 'Development sign-in'),
      h('p', { id: 'dev-help' }, 'Only on the embedded default, for trying Baton out: pick a role and its scope (a hospital or trust code for a ward, a team code for a team, a hub code for a hub).'),
      h('label', { for: 'dev-role' }, 'Role'), role,
      h('label', { for: 'dev-scope' }, 'Scope (hospital, trust, team or hub code)'), scope, known,
      h('label', { for: 'dev-name' }, 'Your name'), name,
      devError,
      devButton));
  }
  main.replaceChildren(h('div', { class: 'signin' }, h('h1', {}, 'Sign in to Baton'), ...sections));
}

function home(me) {
  // A trust's first hospital is known once reference data is read: until
  // then, home is the start page, which routes here again after reading it.
  if (me.role === 'ward' && me.trust && !reference.hospitals) return '/';
  if (me.role === 'ward') return `/hospital/${myHospitals(me)[0] || ''}`;
  if (me.role === 'team') return `/team/${me.team}`;
  if (me.role === 'hub') return `/hub/${me.hub}`;
  if (me.role === 'system') return '/system';
  return '/admin';
}

// A drop-down list of links (a disclosure: keyboard and screen readers
// work as with any button; Escape closes it).
function menu(label, links) {
  return h('details', { class: 'menu' },
    h('summary', {}, label),
    h('ul', {}, links.map(([href, text]) => h('li', {}, h('a', { href }, text)))));
}

function header() {
  const who = document.getElementById('who');
  const out = document.getElementById('sign-out');
  const nav = document.getElementById('nav');
  nav.replaceChildren();
  if (!session) {
    who.textContent = '';
    who.removeAttribute('title');
    out.hidden = true;
    return;
  }
  const scope = session.hospital || session.trust || session.team || session.hub;
  who.textContent = `${session.name} (${session.role}${scope ? ` ${scope}` : ''})`;
  who.title = who.textContent;
  out.hidden = false;
  // Sign-out is a form post (with the anti-forgery token), so the server
  // can end the session and send the browser on to the provider's own
  // sign-out.
  out.onclick = () => {
    const form = h('form', { method: 'post', action: '/auth/logout', hidden: true },
      h('input', { type: 'hidden', name: 'csrf_token', value: session.csrf_token || '' }));
    document.body.append(form);
    unsubscribe();
    form.submit();
  };
  if (session.role === 'ward' && session.trust) {
    // A trust's staff switch between its hospitals and all their wards.
    const mine = myHospitals(session);
    if (mine.length) nav.append(menu('Hospitals', mine.map((code) => [`/hospital/${code}`, hospitalName(code)])));
    const wards = reference.wards.filter((w) => mine.includes(w.hospital));
    if (wards.length) nav.append(menu('Wards', wards.map((w) => [`/ward/${w.code}`, `${w.name} (${hospitalName(w.hospital)})`])));
  } else if (session.role === 'ward') {
    nav.append(h('a', { href: `/hospital/${session.hospital}` }, 'Hospital'));
    const wards = reference.wards.filter((w) => w.hospital === session.hospital);
    if (wards.length) nav.append(menu('Wards', wards.map((w) => [`/ward/${w.code}`, w.name])));
  } else if (session.role === 'hub') {
    nav.append(h('a', { href: `/hub/${session.hub}` }, 'Discharge-ready patients'));
  } else if (session.role === 'team') {
    nav.append(h('a', { href: `/team/${session.team}` }, 'Handover inbox'));
  } else if (session.role === 'system') {
    nav.append(h('a', { href: '/system' }, 'System'));
    if (reference.hospitals.length) nav.append(menu('Hospitals', reference.hospitals.map((x) => [`/hospital/${x.code}`, x.name])));
  }
}

// ----- ward page -----

function bedRow(row, ward, view) {
  const tr = h('tr', { 'data-bed': row.bed, class: row.spell_id ? '' : 'free' });
  if (!row.spell_id) {
    tr.append(h('th', { scope: 'row', class: 'c-bed' }, row.bed), h('td', { colspan: 8, class: 'c-patient' }, 'Free'),
      h('td', { class: 'c-actions' }, actionButton('Admit', {
        key: `bed:${row.bed}:admit`, action: 'admit', aria: `Admit to bed ${row.bed}`,
        onpress: (b) => admitPanel(ward, row.bed, b, view),
      })));
    return tr;
  }
  const p = row.patient || {};
  const edd = row.expected_discharge_date
    ? [formatDate(row.expected_discharge_date), row.edd_overdue ? [' ', tag('Overdue', 'bad')] : null]
    : tag('No EDD', 'warn');
  const ctr = {
    does_not_meet: tag('No criteria to reside', 'bad'),
    meets: tag('Meets criteria', 'ok'),
    not_reviewed: tag('Not reviewed', 'warn'),
  }[row.criteria_to_reside] || '';
  const drd = row.discharge_ready_date
    ? [formatDate(row.discharge_ready_date), ' ', tag(`${row.delay_days} delay day${row.delay_days === 1 ? '' : 's'}`, row.delay_days > 0 ? 'bad' : 'warn')]
    : null;
  const delays = row.open_delays.map((d) => h('div', {}, tag(d.reason_code), ' ', d.reason));
  const referrals = row.referrals.map((r) => h('div', {},
    `${r.team}: `, tag(r.status, r.sla_breached ? 'bad' : ''), r.sla_breached ? tag('SLA breached', 'bad') : null));
  // An empty cell is left out of a tablet's card (its column says nothing).
  const info = (label, ...content) => h('td', { class: 'c-info', 'data-label': label, 'data-empty': content.every((c) => c === null || c === '') ? 'true' : null }, ...content);
  tr.append(
    h('th', { scope: 'row', class: 'c-bed' }, row.bed),
    h('td', { class: 'c-patient' }, h('strong', {}, `${p.family_name}, ${p.given_name}`), h('br'), h('small', {}, nhs(p.nhs_number))),
    info('Days', row.days_in_hospital),
    info('EDD', edd), info('Criteria to reside', ctr), info('Discharge ready / delay', drd),
    info('Pathway', row.pathway || tag('None', 'warn')),
    info('Open delays', delays.length ? delays : 'None'), info('Referrals', referrals.length ? referrals : 'None'),
    h('td', { class: 'c-actions' }, actionButton('Actions', {
      key: `bed:${row.bed}:open`, action: 'open', aria: `Actions for bed ${row.bed}, ${p.family_name}`,
      onpress: (b) => spellPanel(ward, row.spell_id, b, view),
    })),
  );
  return tr;
}

async function wardPage(code) {
  const ward = reference.wards.find((w) => w.code === code);
  if (!ward) return notFound();
  const boardPath = `/api/v1/boards/wards/${encodeURIComponent(code)}`;
  const first = await api('GET', boardPath);
  if (!first.ok) return cannotShow(first, `${ward.name} (${hospitalName(ward.hospital)})`);
  setTitle(ward.name);
  const totals = h('div', { class: 'cards', id: 'totals' });
  const body = h('tbody');
  const table = h('table', { id: 'beds', class: 'reflow' },
    h('caption', { class: 'skip' }, `Beds on ${ward.name}`),
    h('thead', {}, h('tr', {}, ['Bed', 'Patient', 'Days', 'EDD', 'Criteria to reside', 'Discharge ready / delay', 'Pathway', 'Open delays', 'Referrals', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
    body);
  const view = { ward, board: first.body, boardPath };
  const tools = findTools(ward, view);
  view.tools = tools;
  main.replaceChildren(h('h1', {}, `${ward.name} `, h('small', {}, `(${ward.code}, ${hospitalName(ward.hospital)})`)), totals, tools.el,
    h('h2', { class: 'skip' }, 'Beds'), h('div', { class: 'scroll' }, table));
  const laterTools = debounce(() => tools.refresh(), 800);
  view.render = (board) => {
    if (!board || !board.beds) return;
    const before = view.board;
    view.board = board;
    const t = board.totals;
    totals.replaceChildren(
      h('div', { class: 'card' }, h('b', {}, t.occupied), 'occupied'),
      h('div', { class: 'card' }, h('b', {}, t.free), 'free'),
      h('div', { class: 'card' }, h('b', {}, t.beds), 'beds'),
      h('div', { class: 'card' }, h('b', {}, t.nctr), 'no criteria to reside'));
    patchRows(body, board.beds, (row) => `bed:${row.bed}`, (row) => bedRow(row, ward, view));
    // The panel's patient changed elsewhere: update its read-only parts.
    if (panelView && panelView.watch) panelView.watch(board);
    if (before && before !== board && JSON.stringify(before.totals) !== JSON.stringify(board.totals)) laterTools();
  };
  // After one's own command: show the board as it is once the command is in.
  view.reload = async (consistency) => {
    const answer = await api('GET', withToken(boardPath, consistency));
    if (answer.ok && view.board !== answer.body) view.render(answer.body);
  };
  view.render(first.body);
  tools.refresh();
  subscribe(`ward:${code}`, view.render, () => api('GET', boardPath));
}

// The ward's recent discharges and a search across the hospital's (or the
// trust's hospitals') patients,
// in hospital and discharged: every correction starts from one of these.
function findTools(ward, view) {
  // A trust's ward searches every hospital of its trust (the API does).
  const searched = session && session.trust
    ? myHospitals(session).map(hospitalName).join(', ') || ward.hospital
    : hospitalName(ward.hospital);
  const q = h('input', { id: 'search-q', name: 'q', type: 'search', autocomplete: 'off', 'aria-describedby': 'search-help' });
  const results = h('div', { id: 'search-results' });
  const searchStatus = h('p', { class: 'search-status', role: 'status' });
  let lastQuery = '';
  const resultBody = h('tbody');
  const resultTable = h('table', { id: 'search-table', class: 'reflow compact' },
    h('caption', { class: 'skip' }, 'Patients found'),
    h('thead', {}, h('tr', {}, ['Patient', 'Born', 'Status', 'Where', 'Admitted', 'Discharged', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
    resultBody);
  const openButton = (r, prefix) => actionButton('Open', {
    key: `${prefix}:${r.spell_id}`, action: 'open-spell', aria: `Open ${r.family_name}, ${r.given_name}`,
    onpress: (b) => spellPanel(ward, r.spell_id, b, view),
  });
  const found = (r) => h('tr', { 'data-spell': r.spell_id },
    h('th', { scope: 'row', class: 'c-patient' }, h('strong', {}, `${r.family_name}, ${r.given_name}`), h('br'), h('small', {}, nhs(r.nhs_number))),
    h('td', { class: 'c-info', 'data-label': 'Born' }, r.date_of_birth ? longDate(r.date_of_birth) : ''),
    h('td', { class: 'c-info', 'data-label': 'Status' }, r.status === 'discharged' ? tag('Discharged', 'warn') : tag('In hospital', 'ok')),
    h('td', { class: 'c-info', 'data-label': 'Where' }, `${wardName(r.ward)}${r.bed ? `, bed ${r.bed}` : ''}`),
    h('td', { class: 'c-info', 'data-label': 'Admitted' }, formatWhen(r.admitted_at)),
    h('td', { class: 'c-info', 'data-label': 'Discharged' }, r.discharged_at ? formatWhen(r.discharged_at) : ''),
    h('td', { class: 'c-actions' }, openButton(r, 'search')));
  const search = async (text) => {
    lastQuery = text.trim();
    if (!lastQuery) {
      searchStatus.textContent = 'Type an NHS number or part of a name.';
      results.replaceChildren();
      return;
    }
    const answer = await api('GET', `/api/v1/spells/search?q=${encodeURIComponent(lastQuery)}`);
    if (!answer.ok) {
      searchStatus.textContent = answer.status === 404
        ? 'Searching is not available from this Baton yet.'
        : problemText(answer, 'The search failed');
      results.replaceChildren();
      return;
    }
    const rows = answer.body.results || [];
    searchStatus.textContent = rows.length
      ? `${rows.length} patient${rows.length === 1 ? '' : 's'} in ${searched} match “${lastQuery}”.`
      : `No patient in ${searched} matches “${lastQuery}”.`;
    patchRows(resultBody, rows, (r) => `found:${r.spell_id}`, found);
    if (rows.length && !results.contains(resultTable)) results.replaceChildren(h('div', { class: 'scroll' }, resultTable));
    if (!rows.length) results.replaceChildren();
  };
  const form = h('form', { id: 'patient-search', role: 'search', 'aria-label': 'Find a patient', class: 'search', novalidate: true },
    h('label', { for: 'search-q' }, 'Find a patient (in hospital or discharged)'),
    h('div', { class: 'search-row' }, q, h('button', { type: 'submit', 'data-key': 'search' }, 'Search')),
    h('p', { id: 'search-help', class: 'help' }, `NHS number or part of a name, anywhere in ${searched}.`));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    guarded('search', () => search(q.value));
  });

  const recentBody = h('tbody');
  const recentCount = h('span', { id: 'recent-count' });
  const recentStatus = h('p', { class: 'help', id: 'recent-status' });
  const recentTable = h('table', { id: 'recent-discharges', class: 'reflow compact' },
    h('caption', { class: 'skip' }, `Discharges from ${ward.name} in the last 72 hours, newest first`),
    h('thead', {}, h('tr', {}, ['Patient', 'Bed', 'Admitted', 'Discharged', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
    recentBody);
  const recentRow = (r) => h('tr', { 'data-spell': r.spell_id },
    h('th', { scope: 'row', class: 'c-patient' }, h('strong', {}, `${r.family_name}, ${r.given_name}`), h('br'), h('small', {}, nhs(r.nhs_number))),
    h('td', { class: 'c-info', 'data-label': 'Bed' }, r.bed),
    h('td', { class: 'c-info', 'data-label': 'Admitted' }, formatWhen(r.admitted_at)),
    h('td', { class: 'c-info', 'data-label': 'Discharged' }, formatWhen(r.discharged_at)),
    h('td', { class: 'c-actions' }, openButton(r, 'recent')));
  const recent = h('details', { id: 'recent', class: 'recent' },
    h('summary', {}, 'Recent discharges (last 72 hours)', recentCount),
    recentStatus,
    h('div', { class: 'scroll' }, recentTable));
  const loadRecent = async () => {
    const answer = await api('GET', `/api/v1/boards/wards/${encodeURIComponent(ward.code)}/recent-discharges?hours=72`);
    if (!answer.ok) {
      recentCount.textContent = '';
      recentStatus.textContent = answer.status === 404 ? 'Recent discharges are not available from this Baton yet.' : problemText(answer, 'Recent discharges could not be read');
      patchRows(recentBody, [], (r) => r, recentRow);
      return;
    }
    const rows = answer.body.discharges || [];
    recentCount.textContent = `: ${rows.length}`;
    recentStatus.textContent = rows.length
      ? 'Open one to correct a discharge made in error.'
      : `Nobody has been discharged from ${ward.name} in the last 72 hours.`;
    patchRows(recentBody, rows, (r) => `recent:${r.spell_id}`, recentRow);
  };
  return {
    el: h('section', { class: 'tools', 'aria-label': 'Find a patient and recent discharges' },
      h('div', {}, form, searchStatus, results), recent),
    refresh: () => { loadRecent(); if (lastQuery) search(lastQuery); },
  };
}

function admitPanel(ward, bed, opener, view) {
  const send = (v) => api('POST', '/api/v1/spells', {
    nhs_number: v.nhs_number, family_name: v.family_name, given_name: v.given_name,
    date_of_birth: v.date_of_birth, ward: ward.code, bed: v.bed, admitted_at: instant(v.admitted_at),
  });
  openPanel(`Admit to ${ward.name}, bed ${bed}`, opener, commandForm({
    command: 'admit', title: 'Admit a patient', submit: 'Admit',
    fields: [
      { name: 'nhs_number', label: 'NHS number', required: true },
      { name: 'family_name', label: 'Family name', required: true },
      { name: 'given_name', label: 'Given name', required: true },
      { name: 'date_of_birth', label: 'Date of birth', type: 'date', required: true },
      { name: 'bed', label: 'Bed', value: bed },
      { name: 'admitted_at', label: 'Admitted at', type: 'datetime-local', value: localNow() },
    ],
    send: async (v) => {
      const generation = panelGeneration;
      const answer = await send(v);
      if (answer.ok) {
        await view.reload(answer.body.consistency_token);
        notify(`Admitted ${v.family_name}, ${v.given_name} to bed ${v.bed}.`);
        if (panelGeneration === generation) {
          // Focus goes to the patient's bed: the Admit button became Actions.
          panelOpener = { key: `bed:${v.bed}:open`, rowKey: `bed:${v.bed}` };
          closePanel();
        }
      }
      return answer;
    },
  }));
}

const SERVICES = ['reablement', 'home_care', 'district_nursing', 'community_rehab_bed', 'care_home', 'social_work_assessment', 'hospice', 'other'];
const PATHWAYS = [['P0', 'P0: home, no new support'], ['P1', 'P1: home with support'], ['P2', 'P2: short-term bed'], ['P3', 'P3: 24-hour care']];
const DESTINATIONS = ['usual_residence', 'usual_residence_with_support', 'community_rehab_bed', 'care_home_new', 'care_home_usual', 'hospice', 'other_acute_trust', 'died', 'other'];
const ACTIVE_REFERRAL = (status) => !['rejected', 'cancelled', 'completed'].includes(status);

// A spell and its referrals, as the panel shows them.
async function loadSpell(view, spellId, consistency) {
  const spell = await api('GET', withToken(`/api/v1/spells/${encodeURIComponent(spellId)}`, consistency));
  if (!spell.ok) return { error: spell };
  let ids = null;
  const row = view.board && view.board.beds.find((b) => b.spell_id === spellId);
  if (row && !consistency) ids = row.referrals.map((r) => r.referral_id);
  if (!ids) {
    const list = await api('GET', withToken('/api/v1/referrals', consistency));
    ids = list.ok ? list.body.filter((r) => r.spell_id === spellId).map((r) => r.id) : [];
  }
  const referrals = [];
  for (const id of ids) {
    const details = await api('GET', `/api/v1/referrals/${encodeURIComponent(id)}`);
    if (details.ok) referrals.push(details.body);
  }
  return { spell: spell.body, referrals };
}

function criteriaText(s) {
  if (s.discharge_ready_date) return `No criteria to reside since ${formatDate(s.discharge_ready_date)}`;
  if ((s.reviews || []).length) return 'Meets the criteria to reside';
  return 'Not reviewed yet';
}

function spellStatusText(s) {
  if (s.status === 'discharged') {
    const d = s.discharge || {};
    return `Discharged${d.at ? ` ${formatWhen(d.at)}` : ''}${d.destination ? `, to ${words(d.destination)}` : ''}`;
  }
  if (s.status === 'cancelled') return 'Admission cancelled (entered in error)';
  return 'In hospital';
}

// The panel's read-only summary of the spell (updated in place).
function spellSummary(s, referrals) {
  const p = s.patient;
  const open = s.status === 'open';
  const item = (term, ...details) => [h('dt', {}, term), h('dd', {}, ...details)];
  const delays = (s.delays || []).filter((d) => !d.resolved_at);
  return [
    h('p', {}, `NHS number ${nhs(p.nhs_number)}, born ${longDate(p.date_of_birth)}.`),
    h('dl', { class: 'facts' },
      item('Status', s.status === 'open' ? tag('In hospital', 'ok') : tag(spellStatusText(s), s.status === 'cancelled' ? 'bad' : 'warn')),
      item(open ? 'Bed' : 'Last bed', `Bed ${s.placement.bed}, ${wardName(s.placement.ward)}`),
      open ? item('Expected discharge', s.expected_discharge_date ? formatDate(s.expected_discharge_date) : 'Not set') : [],
      open ? item('Criteria to reside', criteriaText(s)) : [],
      item('Pathway', s.pathway || 'None'),
      open ? item('Open delays', delays.length ? delays.map((d) => h('div', {}, `${d.reason.code}. ${d.reason.label}`)) : 'None') : [],
      item('Referrals', referrals.length ? referrals.map((r) => h('div', {}, `${teamName(r.team)}: ${r.status}`)) : 'None')),
  ];
}

// The sections the panel should show for this spell, in order: each has a
// key, a title (kept current) and a builder (called once).
function spellSections(view, s, referrals) {
  const spellId = s.spell_id || s.id;
  const post = (tail, body) => api('POST', `/api/v1/spells/${encodeURIComponent(spellId)}/${tail}`, body);
  const ward = view.ward;
  const reasons = reference.reasons.map((r) => [r.code, `${r.code}. ${r.label}`]);
  const teams = reference.teams.map((t) => [t.code, t.name]);
  const services = SERVICES.map((x) => [x, words(x)]);
  const wards = reference.wards.filter((w) => w.hospital === s.hospital || w.hospital === ward.hospital).map((w) => [w.code, w.name]);
  const destinations = DESTINATIONS.map((x) => [x, words(x)]);
  const saved = (answer) => { if (answer.ok) view.saved(answer.body && answer.body.consistency_token); return answer; };
  const sections = [];
  // `current`: values that follow the record in a form nobody is using.
  const form = (key, spec, current) => sections.push({ key, title: spec.title, current, build: () => commandForm(spec) });
  const open = s.status === 'open';
  if (open) {
    form('edd', { command: 'edd', title: 'Expected discharge date', submit: 'Set EDD', done: 'EDD saved',
      fields: [{ name: 'date', label: 'Expected discharge date', type: 'date', value: s.expected_discharge_date || today(1) }],
      send: async (v) => saved(await post('expected-discharge-date', { date: v.date })) },
    s.expected_discharge_date ? { date: s.expected_discharge_date } : null);
    form('review', { command: 'review', title: 'Criteria-to-reside review', submit: 'Record review', done: 'Review recorded',
      fields: [
        { name: 'meets_criteria_to_reside', label: 'Does the patient meet the criteria to reside?', options: [['true', 'Yes, meets the criteria'], ['false', 'No, no criteria to reside']] },
        { name: 'at', label: 'Reviewed at', type: 'datetime-local', value: localNow() }],
      send: async (v) => saved(await post('criteria-review', { meets_criteria_to_reside: v.meets_criteria_to_reside === 'true', at: instant(v.at) })) });
    form('pathway', { command: 'pathway', title: 'Discharge pathway', submit: 'Set pathway', done: 'Pathway saved',
      fields: [{ name: 'pathway', label: 'Pathway', options: PATHWAYS, value: s.pathway || 'P0' }],
      send: async (v) => saved(await post('pathway', { pathway: v.pathway })) },
    s.pathway ? { pathway: s.pathway } : null);
    form('delay', { command: 'delay', title: 'Record a delay', submit: 'Record delay', done: 'Delay recorded',
      fields: [
        { name: 'reason_code', label: 'Reason', options: reasons },
        { name: 'note', label: 'Note (optional)', type: 'textarea', reset: true },
        { name: 'at', label: 'Delayed since', type: 'datetime-local', value: localNow() }],
      send: async (v) => saved(await post('delays', { reason_code: v.reason_code, note: v.note || null, at: instant(v.at) })) });
    for (const delay of (s.delays || []).filter((d) => !d.resolved_at)) {
      form(`resolve:${delay.delay_id}`, { command: 'resolve', title: `Resolve delay ${delay.delay_id}: ${delay.reason.label}`, submit: 'Resolve', done: 'Delay resolved',
        fields: [{ name: 'at', label: 'Resolved at', type: 'datetime-local', value: localNow(), idSuffix: `-${delay.delay_id}` }],
        send: async (v) => saved(await post(`delays/${encodeURIComponent(delay.delay_id)}/resolve`, { at: instant(v.at) })) });
    }
  }
  let active = 0;
  for (const r of referrals) {
    // Only an on-hold referral takes an answer: a team that accepted or
    // declined without one has moved on.
    const pending = r.status === 'on-hold' ? (r.exchanges || []).find((x) => !x.answer) : null;
    const id = r.id || r.referral_id;
    if (pending) {
      form(`answer:${id}:${pending.asked_at}`, { command: 'answer', title: `${teamName(r.team)} asks: ${pending.question}`, submit: 'Send answer', done: 'Answer sent',
        fields: [{ name: 'answer', label: 'Answer', type: 'textarea', reset: true, idSuffix: `-${id}` }],
        send: async (v) => saved(await api('POST', `/api/v1/referrals/${encodeURIComponent(id)}/provide-information`, { answer: v.answer })) });
    }
    if (ACTIVE_REFERRAL(r.status)) {
      active += 1;
      form(`withdraw:${id}`, { command: 'withdraw', title: `Withdraw the referral to ${teamName(r.team)} (${r.status})`, submit: 'Withdraw', done: 'Referral withdrawn',
        fields: [{ name: 'reason', label: 'Why', type: 'textarea', reset: true, idSuffix: `-${id}` }],
        send: async (v) => saved(await api('POST', `/api/v1/referrals/${encodeURIComponent(id)}/withdraw`, { reason: v.reason })) });
    }
  }
  if (open) {
    form('raise', { command: 'raise', title: 'Refer to a community team', submit: 'Raise referral', done: 'Referral raised',
      fields: [
        { name: 'team', label: 'Team', options: teams },
        { name: 'service', label: 'Service', options: services },
        { name: 'pathway', label: 'Pathway', options: PATHWAYS.slice(1), value: s.pathway && s.pathway !== 'P0' ? s.pathway : 'P1' },
        { name: 'summary', label: 'What the team needs to know', type: 'textarea', reset: true }],
      send: async (v) => saved(await api('POST', '/api/v1/referrals', { spell_id: spellId, team: v.team, service: v.service, pathway: v.pathway, summary: v.summary })) });
    form('transfer', { command: 'transfer', title: 'Transfer', submit: 'Transfer', done: 'Transferred',
      fields: [
        { name: 'ward', label: 'To ward', options: wards, value: s.placement.ward },
        { name: 'bed', label: 'To bed' },
        { name: 'at', label: 'Transferred at', type: 'datetime-local', value: localNow() }],
      send: async (v) => saved(await post('transfer', { ward: v.ward, bed: v.bed, at: instant(v.at) })) });
    form('discharge', { command: 'discharge', title: 'Discharge', submit: 'Discharge', done: 'Discharged',
      fields: [
        { name: 'destination', label: 'Destination', options: destinations },
        { name: 'at', label: 'Discharged at', type: 'datetime-local', value: localNow() }],
      send: async (v) => saved(await post('discharge', { destination: v.destination, at: instant(v.at) })) });
  }
  const correction = (command, title, tail, done) => form(command, { command, title, submit: title, done,
    fields: [{ name: 'reason', label: 'Why is this a correction?', type: 'textarea', reset: true }],
    send: async (v) => saved(await post(tail, { reason: v.reason })) });
  const corrections = [];
  if (s.status === 'discharged') corrections.push(() => correction('cancel-discharge', 'Cancel the discharge', 'cancel-discharge', 'Discharge cancelled'));
  if (open && (s.transfers || []).length) corrections.push(() => correction('cancel-transfer', 'Cancel the last transfer', 'cancel-transfer', 'Transfer cancelled'));
  if (open) {
    // The API refuses this while referrals are active (409): say so first.
    if (active) corrections.push(() => sections.push({ key: 'cancel-admission-hint', build: () => h('p', { class: 'hint', id: 'cancel-admission-hint' }, 'An admission with active referrals cannot be cancelled: withdraw them above first, so each team is told.') }));
    corrections.push(() => correction('cancel-admission', 'Cancel the admission (entered in error)', 'cancel-admission', 'Admission cancelled'));
  }
  if (corrections.length) {
    sections.push({ key: 'corrections', build: () => h('h2', {}, 'Corrections') });
    for (const add of corrections) add();
  }
  return sections;
}

// Shows `sections` in the panel's container: a section already shown is
// kept exactly as it is (what is typed in it, its focus, its "Saved"); new
// ones are added; one no longer wanted is removed, unless the user is in it
// or has typed in it, when it is kept and says it no longer applies.
function applySections(view, sections, justSaved) {
  const container = view.container;
  const wanted = new Set(sections.map((x) => x.key));
  const kept = [];
  for (const [key, el] of view.sections) {
    if (wanted.has(key)) continue;
    const inUse = el !== justSaved && (el.contains(document.activeElement) || el.dataset.dirty);
    if (inUse) {
      if (!el.querySelector('.no-longer')) {
        el.prepend(h('p', { class: 'hint no-longer' }, 'This no longer applies: the record changed elsewhere.'));
        const button = el.querySelector('button[type=submit]');
        if (button) button.setAttribute('aria-disabled', 'true');
        el.dataset.busy = 'stale';
      }
      kept.push(el);
      continue;
    }
    el.remove();
    view.sections.delete(key);
  }
  const order = [];
  for (const section of sections) {
    let el = view.sections.get(section.key);
    if (!el) {
      el = section.build();
      el.dataset.section = section.key;
      view.sections.set(section.key, el);
    } else {
      if (section.title && el._heading && el._heading.textContent !== section.title) el._heading.textContent = section.title;
      // A form nobody is in shows the record as it now is (so sending it
      // as it stands does not undo a colleague's change).
      if (section.current && !el.dataset.dirty && !el.dataset.busy && !el.contains(document.activeElement)) {
        for (const [name, value] of Object.entries(section.current)) {
          const input = el.elements && el.elements.namedItem(name);
          if (input && input.value !== value) input.value = value;
        }
      }
    }
    order.push(el);
  }
  // Sections kept for the user stay next to the one they followed.
  for (const el of kept) {
    let before = el.previousElementSibling;
    while (before && !order.includes(before)) before = before.previousElementSibling;
    order.splice(before ? order.indexOf(before) + 1 : 0, 0, el);
  }
  order.forEach((el, i) => { if (container.children[i] !== el) place(container, el, container.children[i] || null); });
  for (const child of [...container.children].slice(order.length)) child.remove();
}

// The panel of one spell. Read-only parts (the summary) follow live changes
// and the user's own saves; forms are never rebuilt while shown.
async function spellPanel(ward, spellId, opener, page) {
  const view = { ward, board: page && page.board, spellId, sections: new Map() };
  const state = await loadSpell(view, spellId);
  if (state.error) {
    openPanel('Not available', opener, h('p', { role: 'alert' }, (state.error.body && state.error.body.detail) || 'This spell cannot be shown.'));
    return;
  }
  const p = state.spell.patient;
  view.summary = h('div', { class: 'summary', id: 'spell-summary' });
  view.container = h('div', { class: 'sections' });
  openPanel(`${p.family_name}, ${p.given_name}`, opener, view.summary, view.container);
  const generation = panelGeneration;
  const mine = () => panelGeneration === generation;
  let lastRow = null;
  const rowOf = (board) => JSON.stringify(board && board.beds ? board.beds.find((b) => b.spell_id === spellId) || null : null);
  let latest = 0;
  const show = async (consistency) => {
    const asked = ++latest;
    const next = await loadSpell(view, spellId, consistency);
    if (!mine() || asked !== latest || next.error) return;
    // The form the user just sent, if any: it may go (a discharge).
    const justSaved = view.justSaved && !view.justSaved.dataset.busy ? view.justSaved : null;
    if (justSaved) view.justSaved = null;
    const wasOpen = view.status;
    view.status = next.spell.status;
    // If the button that opened the panel goes (a corrected discharge leaves
    // the recent list), focus goes back to the patient's bed instead.
    const where = next.spell.placement;
    if (panelOpener && next.spell.status === 'open' && where.ward === ward.code) panelOpener.fallback = `bed:${where.bed}:open`;
    view.summary.replaceChildren(...spellSummary(next.spell, next.referrals));
    const hadFocus = justSaved && justSaved.contains(document.activeElement);
    applySections(view, spellSections(view, next.spell, next.referrals), justSaved);
    if (justSaved && !justSaved.isConnected) {
      // The user's own save ended that form (a discharge, a resolved
      // delay): say so where it is read, and keep focus in the panel.
      const text = justSaved.querySelector('.done')?.textContent || 'Saved.';
      notify(`${p.family_name}, ${p.given_name}: ${text}`);
      if (hadFocus) panel.querySelector('#panel-title').focus();
    }
    // A correction or a discharge changes the recent discharges and what a
    // search found.
    if (page && page.tools && (justSaved || wasOpen !== next.spell.status)) page.tools.refresh();
  };
  view.status = state.spell.status;
  view.summary.replaceChildren(...spellSummary(state.spell, state.referrals));
  applySections(view, spellSections(view, state.spell, state.referrals));
  const first = view.container.querySelector('input, select, textarea, button');
  if (first) first.focus();
  view.saved = (consistency) => {
    view.justSaved = panel.querySelector('form[data-busy="1"]');
    if (page && page.reload) page.reload(consistency);
    show(consistency);
  };
  const later = debounce(() => show(), 250);
  lastRow = rowOf(view.board);
  view.watch = (board) => {
    view.board = board;
    const row = rowOf(board);
    if (row !== lastRow) { lastRow = row; later(); }
  };
  panelView = view;
}

// ----- team page -----

const WAITING = ['requested', 'received', 'on-hold'];
const referralDetails = new Map(); // id -> { status, body }

function urgent(r) { return r.sla_breached || r.escalated; }

// Breached (or escalated) first, then the longest waiting (and of those
// raised in the same minute, the one due soonest).
const dueIn = (r) => (r.sla_minutes_left === null || r.sla_minutes_left === undefined ? Infinity : r.sla_minutes_left);
function byUrgency(a, b) {
  return (urgent(b) - urgent(a)) || (b.age_minutes - a.age_minutes) || (dueIn(a) - dueIn(b)) || a.id.localeCompare(b.id);
}

function waited(minutes) {
  if (minutes < 60) return `${minutes} min`;
  if (minutes < 48 * 60) return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  return `${Math.floor(minutes / 1440)} days ${Math.floor((minutes % 1440) / 60)} h`;
}

// A referral's patient may have left hospital, or their admission may have
// been cancelled as entered in error, since the referral was raised
// (`patient_status` and `discharged_at` of the team board's rows).
function patientStatusTag(r) {
  if (r.patient_status === 'discharged') return tag(`Discharged from hospital${r.discharged_at ? ` ${formatWhen(r.discharged_at)}` : ''}`, 'warn');
  if (r.patient_status === 'admission_cancelled') return tag('Admission cancelled', 'bad');
  return null;
}

function patientStatusHint(r) {
  if (r.patient_status === 'discharged') return h('p', { class: 'hint', id: 'patient-status' }, `The patient has been discharged from hospital${r.discharged_at ? ` (${formatWhen(r.discharged_at)})` : ''} since this referral was made. Check with the ward before acting on it.`);
  if (r.patient_status === 'admission_cancelled') return h('p', { class: 'hint', id: 'patient-status' }, 'The hospital cancelled this admission as entered in error: the ward should withdraw this referral. Check with the ward before acting on it.');
  return null;
}

async function teamPage(code) {
  const team = reference.teams.find((t) => t.code === code);
  if (!team) return notFound();
  const boardPath = `/api/v1/boards/teams/${encodeURIComponent(code)}`;
  const first = await api('GET', boardPath);
  if (!first.ok) return cannotShow(first, `the handover inbox of ${team.name}`);
  setTitle(`${team.name}: handover inbox`);
  const counts = h('div', { class: 'cards', id: 'counts' });
  const columns = ['Patient', 'From', 'Referral', 'Status', 'Waiting', 'Response due', 'Planned start', 'Actions'];
  const table = (id, caption, body) => h('table', { id, class: 'reflow' },
    h('caption', { class: 'skip' }, caption),
    h('thead', {}, h('tr', {}, columns.map((t) => h('th', { scope: 'col' }, t)))), body);
  const waitingBody = h('tbody');
  const acceptedBody = h('tbody');
  const waitingTitle = h('h2', { id: 'waiting-title' }, 'Waiting for your answer');
  const acceptedTitle = h('h2', { id: 'accepted-title' }, 'Accepted: care to start');
  main.replaceChildren(h('h1', {}, `${team.name}: handover inbox`), counts,
    waitingTitle, h('p', { class: 'help' }, 'Breached first, then the longest waiting.'),
    h('div', { class: 'scroll' }, table('referrals', 'Referrals waiting for an answer, breached first, then the longest waiting', waitingBody)),
    acceptedTitle,
    h('div', { class: 'scroll' }, table('accepted', 'Referrals accepted, care not yet started', acceptedBody)));
  const view = { team, boardPath, board: null };
  view.render = (board) => {
    if (!board || !board.referrals) return;
    view.board = board;
    counts.replaceChildren(...Object.entries(board.counts).map(([status, n]) => h('div', { class: 'card' }, h('b', {}, n), status)));
    // The board carries each summary; a question asked is read from the
    // referral itself (and the summary too, from a Baton whose board has none).
    const needsDetails = (r) => r.summary === undefined || r.summary === null || r.status === 'on-hold';
    const rows = board.referrals.map((r) => ({ ...r, details: needsDetails(r) ? detailsFor(r, view) : null }));
    const waiting = rows.filter((r) => r.status !== 'accepted').sort(byUrgency);
    const accepted = rows.filter((r) => r.status === 'accepted')
      .sort((a, b) => String(a.planned_start).localeCompare(String(b.planned_start)) || b.age_minutes - a.age_minutes);
    waitingTitle.textContent = `Waiting for your answer (${waiting.length})`;
    acceptedTitle.textContent = `Accepted: care to start (${accepted.length})`;
    const empty = (text) => ({ empty: text });
    const build = (r) => r.empty ? h('tr', {}, h('td', { colspan: 8 }, r.empty)) : referralRow(r, view);
    const keyOf = (r) => r.empty ? 'empty' : `ref:${r.id}`;
    patchRows(waitingBody, waiting.length ? waiting : [empty('No referrals waiting for an answer.')], keyOf, build);
    patchRows(acceptedBody, accepted.length ? accepted : [empty('No accepted referrals waiting to start.')], keyOf, build);
  };
  view.reload = async (consistency) => {
    const answer = await api('GET', withToken(boardPath, consistency));
    if (answer.ok) view.render(answer.body);
  };
  view.render(first.body);
  subscribe(`team:${code}`, view.render, () => api('GET', boardPath));
}

// The referral's summary and questions, read once per status (the board
// carries the status; the summary comes with the referral itself).
function detailsFor(r, view) {
  const known = referralDetails.get(r.id);
  if (known && known.status === r.status) return known.body;
  if (!known || !known.loading || known.status !== r.status) {
    const entry = { status: r.status, body: known ? known.body : null, loading: true };
    referralDetails.set(r.id, entry);
    api('GET', `/api/v1/referrals/${encodeURIComponent(r.id)}`).then((answer) => {
      entry.loading = false;
      if (answer.ok) {
        entry.body = { summary: answer.body.summary, exchanges: answer.body.exchanges || [] };
        if (view.board) view.render(view.board);
      }
    });
  }
  return known ? known.body : null;
}

function referralRow(r, view) {
  const rowKey = `ref:${r.id}`;
  const name = `${r.patient.family_name}, ${r.patient.given_name}`;
  const sla = r.sla_breached ? tag('Breached', 'bad')
    : r.sla_minutes_left !== null && r.sla_minutes_left !== undefined ? tag(`${r.sla_minutes_left} min left`, r.sla_minutes_left < 30 ? 'warn' : '')
      : 'Answered';
  const message = rowMessage(rowKey);
  const post = (tail, body) => api('POST', `/api/v1/referrals/${encodeURIComponent(r.id)}/${tail}`, body);
  const act = (action, label, onpress) => actionButton(label, { key: `${rowKey}:${action}`, action, kind: 'secondary', aria: `${label}: ${name}`, onpress });
  // A command from a panel: on success the board is shown as it now is,
  // the panel closes (focus back to the row) and the result is confirmed.
  const panelSend = (tail, body, said) => async (v) => {
    const generation = panelGeneration;
    const answer = await post(tail, body(v));
    if (answer.ok) {
      await view.reload(answer.body.consistency_token);
      notify(`${name}: ${said(v)}.`);
      if (panelGeneration === generation) closePanel();
    }
    return answer;
  };
  const actions = [];
  if (r.status === 'requested') {
    actions.push(act('acknowledge', 'Acknowledge', () => guarded(`${rowKey}:acknowledge`, async () => {
      message.textContent = '';
      const answer = await post('acknowledge', {});
      if (!answer.ok) {
        message.textContent = problemText(answer, `${name} was not acknowledged`);
        return;
      }
      // Busy until the list shows it received.
      await view.reload(answer.body.consistency_token);
      notify(`${name}: acknowledged.`);
    })));
  }
  if (WAITING.includes(r.status)) {
    actions.push(
      act('accept', 'Accept', (b) => referralPanel(r, b, commandForm({ command: 'accept', title: 'Accept', submit: 'Accept',
        fields: [{ name: 'planned_start', label: 'Planned start', type: 'date', value: today(1) }],
        send: panelSend('accept', (v) => ({ planned_start: v.planned_start }), (v) => `accepted, planned start ${formatDate(v.planned_start)}`) }))),
      act('decline', 'Decline', (b) => referralPanel(r, b, commandForm({ command: 'decline', title: 'Decline', submit: 'Decline',
        fields: [{ name: 'reason', label: 'Reason', type: 'textarea' }],
        send: panelSend('decline', (v) => ({ reason: v.reason }), () => 'declined') }))));
  }
  if (['requested', 'received'].includes(r.status)) {
    actions.push(
      act('ask', 'Ask for information', (b) => referralPanel(r, b, commandForm({ command: 'ask', title: 'Ask the ward', submit: 'Send question',
        fields: [{ name: 'question', label: 'Question', type: 'textarea' }],
        send: panelSend('request-information', (v) => ({ question: v.question }), () => 'question sent to the ward') }))));
  }
  if (r.status === 'accepted') {
    actions.push(act('start-care', 'Start care', (b) => referralPanel(r, b, commandForm({ command: 'start-care', title: 'Start care', submit: 'Start care',
      fields: [{ name: 'at', label: 'Care started at', type: 'datetime-local', value: localNow() }],
      send: panelSend('start-care', (v) => ({ at: instant(v.at) }), () => 'care started') }))));
  }
  const details = r.details;
  const pendingQuestion = details && r.status === 'on-hold' ? details.exchanges.find((x) => !x.answer) : null;
  const summary = r.summary || (details && details.summary);
  const info = (label, ...content) => h('td', { class: 'c-info', 'data-label': label, 'data-empty': content.every((c) => c === null || c === '') ? 'true' : null }, ...content);
  return h('tr', { 'data-referral': r.id, 'data-status': r.status, 'data-age-minutes': r.age_minutes, 'data-patient-status': r.patient_status || null },
    h('th', { scope: 'row', class: 'c-patient' }, name, h('br'), h('small', {}, nhs(r.patient.nhs_number)),
      patientStatusTag(r) ? [h('br'), patientStatusTag(r)] : null),
    info('From', `${wardName(r.ward)} (${r.hospital})`),
    h('td', { class: 'c-summary', 'data-label': 'Referral' },
      h('span', { class: 'service' }, `${words(r.service)}, ${r.pathway}`),
      h('p', { class: 'summary-text' }, summary || (details === null ? 'Reading the summary…' : '')),
      pendingQuestion ? h('p', { class: 'question' }, `You asked: ${pendingQuestion.question}`) : null),
    info('Status', tag(r.status, r.status === 'on-hold' ? 'warn' : ''), r.escalated ? tag('Escalated', 'bad') : null),
    info('Waiting', waited(r.age_minutes)),
    info('Response due', sla),
    info('Planned start', r.planned_start ? formatDate(r.planned_start) : null),
    h('td', { class: 'c-actions' }, h('div', { class: 'buttons' }, actions), message));
}

async function referralPanel(row, opener, form) {
  const details = await api('GET', `/api/v1/referrals/${encodeURIComponent(row.id)}`);
  const r = details.ok ? details.body : null;
  const exchanges = r && r.exchanges ? r.exchanges : [];
  openPanel(`${row.patient.family_name}, ${row.patient.given_name}`, opener,
    h('p', {}, `NHS number ${nhs(row.patient.nhs_number)}${row.patient.date_of_birth ? `, born ${longDate(row.patient.date_of_birth)}` : ''}. From ${wardName(row.ward)} (${hospitalName(row.hospital)}).`),
    patientStatusHint(row),
    h('p', {}, h('strong', {}, `${words(row.service)}, ${row.pathway}: `), r ? r.summary : (row.summary || '')),
    details.ok ? null : h('p', { class: 'form-error', role: 'alert' }, problemText(details, 'The referral could not be read')),
    exchanges.length ? h('ul', { class: 'exchanges' }, exchanges.map((x) => h('li', {}, `Q: ${x.question}`, h('br'), `A: ${x.answer || '(not yet answered)'}`))) : null,
    form);
}

// ----- care transfer hub page -----

// A hub's discharge-ready patients (its hospitals'), longest waiting first,
// each with its referrals. The hub raises, withdraws and answers referrals
// on the wards' behalf; the spell itself stays the ward's.
async function hubPage(code) {
  const boardPath = `/api/v1/boards/hubs/${encodeURIComponent(code)}`;
  const first = await api('GET', boardPath);
  const title = `${hubName(code)}: discharge-ready patients`;
  if (!first.ok) return cannotShow(first, `the board of ${hubName(code)}`);
  setTitle(title);
  const summary = h('p', { id: 'hub-summary' });
  const body = h('tbody');
  const columns = ['Patient', 'Where', 'Ready since', 'Pathway and delays', 'Referrals', 'Actions'];
  main.replaceChildren(h('h1', {}, title), summary,
    h('div', { class: 'scroll' }, h('table', { id: 'hub-patients', class: 'reflow' },
      h('caption', { class: 'skip' }, 'Patients with no criteria to reside, longest waiting first'),
      h('thead', {}, h('tr', {}, columns.map((t) => h('th', { scope: 'col' }, t)))), body)));
  const view = { board: null };
  view.render = (board) => {
    if (!board || !board.patients) return;
    view.board = board;
    summary.textContent = `${board.nctr} patient${board.nctr === 1 ? '' : 's'} with no criteria to reside at ${board.hospitals.map(hospitalName).join(', ')}.`;
    const rows = board.patients.length ? board.patients : [{ empty: true }];
    patchRows(body, rows, (r) => r.empty ? 'empty' : `spell:${r.id}`,
      (r) => r.empty ? h('tr', {}, h('td', { colspan: columns.length }, 'No patient of these hospitals is waiting to leave.')) : hubRow(r, view));
  };
  view.reload = async (consistency) => {
    const answer = await api('GET', withToken(boardPath, consistency));
    if (answer.ok) view.render(answer.body);
  };
  view.render(first.body);
  subscribe(`hub:${code}`, view.render, () => api('GET', boardPath));
}

function hubRow(r, view) {
  const rowKey = `spell:${r.id}`;
  const name = `${r.patient.family_name}, ${r.patient.given_name}`;
  const message = rowMessage(rowKey);
  const act = (action, label, onpress) => actionButton(label, { key: `${rowKey}:${action}`, action, kind: 'secondary', aria: `${label}: ${name}`, onpress });
  // A command from the panel: on success the board shows it, the panel
  // closes (focus back to the row) and the result is confirmed.
  const send = (path, body, said) => async (v) => {
    const generation = panelGeneration;
    const answer = await api('POST', path, body(v));
    if (answer.ok) {
      await view.reload(answer.body.consistency_token);
      notify(`${name}: ${said}.`);
      if (panelGeneration === generation) closePanel();
    }
    return answer;
  };
  const where = `${wardName(r.ward)}, bed ${r.bed} (${hospitalName(r.hospital)})`;
  const panelFor = (opener, form, ...extra) => openPanel(name, opener,
    h('p', {}, `NHS number ${nhs(r.patient.nhs_number)}, born ${longDate(r.patient.date_of_birth)}. ${where}.`), ...extra, form);
  const actions = [act('raise', 'Refer', (b) => panelFor(b, commandForm({ command: 'raise', title: 'Refer to a community team', submit: 'Raise referral',
    fields: [
      { name: 'team', label: 'Team', options: reference.teams.map((t) => [t.code, t.name]) },
      { name: 'service', label: 'Service', options: SERVICES.map((x) => [x, words(x)]) },
      { name: 'pathway', label: 'Pathway', options: PATHWAYS.slice(1), value: r.pathway && r.pathway !== 'P0' ? r.pathway : 'P1' },
      { name: 'summary', label: 'What the team needs to know', type: 'textarea' }],
    send: send('/api/v1/referrals', (v) => ({ spell_id: r.id, team: v.team, service: v.service, pathway: v.pathway, summary: v.summary }), 'referral raised') })))];
  for (const ref of r.referrals.filter((x) => ACTIVE_REFERRAL(x.status))) {
    const id = ref.referral_id;
    const to = teamName(ref.team);
    actions.push(act(`withdraw:${id}`, `Withdraw (${to})`, (b) => panelFor(b, commandForm({ command: 'withdraw', title: `Withdraw the referral to ${to}`, submit: 'Withdraw',
      fields: [{ name: 'reason', label: 'Why', type: 'textarea' }],
      send: send(`/api/v1/referrals/${encodeURIComponent(id)}/withdraw`, (v) => ({ reason: v.reason }), `referral to ${to} withdrawn`) }))));
    if (ref.status === 'on-hold') {
      actions.push(act(`answer:${id}`, `Answer ${to}`, async (b) => {
        const details = await api('GET', `/api/v1/referrals/${encodeURIComponent(id)}`);
        const pending = details.ok ? (details.body.exchanges || []).find((x) => !x.answer) : null;
        panelFor(b, commandForm({ command: 'answer', title: pending ? `${to} asks: ${pending.question}` : `Answer ${to}`, submit: 'Send answer',
          fields: [{ name: 'answer', label: 'Answer', type: 'textarea' }],
          send: send(`/api/v1/referrals/${encodeURIComponent(id)}/provide-information`, (v) => ({ answer: v.answer }), `answer sent to ${to}`) }),
        details.ok ? null : h('p', { class: 'form-error', role: 'alert' }, problemText(details, 'The referral could not be read')));
      }));
    }
  }
  const info = (label, ...content) => h('td', { class: 'c-info', 'data-label': label }, ...content);
  return h('tr', { 'data-spell': r.id },
    h('th', { scope: 'row', class: 'c-patient' }, name, h('br'), h('small', {}, nhs(r.patient.nhs_number))),
    info('Where', where),
    info('Ready since', formatDate(r.discharge_ready_date), ' ', tag(`${r.delay_days} delay day${r.delay_days === 1 ? '' : 's'}`, r.delay_days > 0 ? 'bad' : 'warn')),
    info('Pathway and delays', r.pathway || 'No pathway', r.open_delays.map((d) => h('div', {}, tag(d.reason_code), ' ', d.reason))),
    info('Referrals', r.referrals.length
      ? h('ul', { class: 'badges' }, r.referrals.map((x) => h('li', { 'data-referral': x.referral_id, 'data-status': x.status },
        `${teamName(x.team)}: `, tag(x.status, x.sla_breached ? 'bad' : x.status === 'on-hold' ? 'warn' : ''), x.escalated ? [' ', tag('Escalated', 'bad')] : null)))
      : 'None'),
    h('td', { class: 'c-actions' }, h('div', { class: 'buttons' }, actions), message));
}

// ----- hospital and system pages -----

// Round figures for an axis from 0 to at least `max`: at most 5 steps.
function niceScale(max) {
  if (max <= 0) return { top: 4, step: 1 };
  const rough = max / 4;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = Math.max(1, [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= rough));
  return { top: Math.ceil(max / step) * step, step };
}

// A chart of one figure by day, drawn at the width it is shown at: a y axis
// with values, dates along the bottom (as many as fit), and a point (or
// bar) per day that the keyboard can focus (arrow keys move along) and the
// pointer can rest on, each reading out its date and value.
function makeChart({ id, title, unit, kind, value }) {
  const todayText = h('span', { class: 'today' });
  const plot = h('div', { class: 'plot' });
  const readout = h('p', { class: 'readout', id: `${id}-readout`, 'aria-hidden': 'true' }, 'Point at a day, or focus the chart and use the arrow keys, to read its figure.');
  const tbody = h('tbody');
  const table = h('table', {},
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Date'), h('th', { scope: 'col' }, title))), tbody);
  const figure = h('figure', { class: 'chart', id },
    h('figcaption', {}, h('strong', {}, title), ' ', todayText),
    plot, readout, h('details', {}, h('summary', {}, 'Figures as a table'), table));
  let days = [];
  let current = null; // the day read out
  let stop = null;    // the day the keyboard last focused (the tab stop)
  let width = 0;
  const unitOf = (v) => (v === 1 ? unit[0] : unit[1]);
  const say = (i) => `${longDate(days[i].date)}: ${value(days[i])} ${unitOf(value(days[i]))}`;
  const show = (i) => {
    current = i;
    readout.textContent = say(i);
    readout.classList.add('on');
    for (const g of plot.querySelectorAll('.day')) g.classList.toggle('current', Number(g.dataset.index) === i);
  };
  function draw() {
    if (!days.length || !width) return;
    const focused = plot.contains(document.activeElement) ? Number(document.activeElement.dataset.index) : null;
    const W = Math.round(width);
    const H = 200;
    const m = { l: 44, r: 16, t: 12, b: 34 };
    const pw = W - m.l - m.r;
    const ph = H - m.t - m.b;
    const values = days.map(value);
    const max = Math.max(...values);
    const { top, step } = niceScale(max);
    const y = (v) => m.t + ph - (v / top) * ph;
    const n = days.length;
    const band = pw / n;
    const x = (i) => m.l + band * (i + 0.5);
    const chart = svg('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'group',
      'aria-label': `${title} by day, last ${n} days: today ${values[n - 1]}, highest ${max}. Arrow keys move from day to day.` });
    const axis = svg('g', { class: 'axis', 'aria-hidden': 'true' });
    for (let v = 0; v <= top + 1e-9; v += step) {
      axis.append(svg('line', { class: 'gridline', x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }),
        svg('text', { class: 'tick y', x: m.l - 6, y: y(v) + 4, 'text-anchor': 'end', text: String(Math.round(v * 100) / 100) }));
    }
    axis.append(svg('line', { class: 'axis-line', x1: m.l, x2: m.l, y1: m.t, y2: m.t + ph }),
      svg('line', { class: 'axis-line', x1: m.l, x2: W - m.r, y1: m.t + ph, y2: m.t + ph }));
    // Dates: as many as fit (about 64 px each), always today's.
    const every = Math.max(1, Math.ceil(n / Math.max(1, Math.floor(pw / 64))));
    for (let i = n - 1; i >= 0; i -= every) {
      const cx = x(i);
      const anchor = cx + 24 > W ? 'end' : cx - 24 < 0 ? 'start' : 'middle';
      axis.append(svg('line', { class: 'axis-line', x1: cx, x2: cx, y1: m.t + ph, y2: m.t + ph + 4 }),
        svg('text', { class: 'tick x', x: cx, y: H - m.b + 18, 'text-anchor': anchor, text: formatDate(days[i].date) }));
    }
    chart.append(axis);
    if (kind === 'line') {
      chart.append(svg('polyline', { class: 'series', 'aria-hidden': 'true', points: values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ') }));
    }
    const roving = focused !== null ? focused : stop !== null && stop < n ? stop : n - 1;
    values.forEach((v, i) => {
      const mark = kind === 'line'
        ? svg('circle', { class: 'mark', cx: x(i), cy: y(v), r: 3.5 })
        : svg('rect', { class: 'mark', x: x(i) - band * 0.35, width: Math.max(1, band * 0.7), y: Math.min(y(v), y(0) - 1), height: Math.max(1, y(0) - y(v)) });
      const g = svg('g', { class: 'day', tabindex: i === roving ? '0' : '-1', role: 'img', 'aria-label': say(i), 'data-index': i },
        svg('rect', { class: 'hit', x: m.l + band * i, width: band, y: m.t, height: ph }), mark);
      g.addEventListener('focus', () => { stop = i; show(i); });
      g.addEventListener('pointerenter', () => show(i));
      chart.append(g);
    });
    chart.addEventListener('keydown', (event) => {
      const at = Number(document.activeElement && document.activeElement.dataset.index);
      if (Number.isNaN(at)) return;
      const to = { ArrowLeft: at - 1, ArrowRight: at + 1, ArrowDown: at - 1, ArrowUp: at + 1, Home: 0, End: n - 1, PageUp: at - 7, PageDown: at + 7 }[event.key];
      if (to === undefined) return;
      event.preventDefault();
      const next = Math.min(n - 1, Math.max(0, to));
      const points = chart.querySelectorAll('.day');
      points.forEach((g) => g.setAttribute('tabindex', Number(g.dataset.index) === next ? '0' : '-1'));
      points[next].focus();
    });
    plot.replaceChildren(chart);
    if (current !== null && current < n) show(current);
    if (focused !== null && focused < n) chart.querySelectorAll('.day')[focused].focus();
  }
  new ResizeObserver(() => {
    const w = plot.clientWidth;
    if (w && Math.abs(w - width) >= 1) { width = w; draw(); }
  }).observe(plot);
  return {
    el: figure,
    update(next) {
      days = next || [];
      if (!days.length) return;
      if (current !== null && current >= days.length) current = null;
      todayText.textContent = `(today: ${value(days[days.length - 1])})`;
      patchRows(tbody, days, (d) => d.date, (d) => h('tr', {}, h('td', {}, longDate(d.date)), h('td', {}, value(d))));
      width = plot.clientWidth || width;
      draw();
    },
  };
}

function makeCharts(container) {
  const set = [
    makeChart({ id: 'chart-nctr', title: 'Patients with no criteria to reside', unit: ['patient', 'patients'], kind: 'line', value: (d) => d.nctr }),
    makeChart({ id: 'chart-discharges', title: 'Discharges', unit: ['discharge', 'discharges'], kind: 'bar', value: (d) => d.discharges }),
    makeChart({ id: 'chart-delay-days', title: 'Delay days', unit: ['delay day', 'delay days'], kind: 'line', value: (d) => d.delay_days }),
  ];
  container.replaceChildren(...set.map((c) => c.el));
  return (days) => { for (const c of set) c.update(days); };
}

function totalsCards(t) {
  return [
    h('div', { class: 'card' }, h('b', {}, `${t.occupied}/${t.beds}`), 'beds occupied'),
    h('div', { class: 'card' }, h('b', {}, t.free), 'free'),
    h('div', { class: 'card' }, h('b', {}, t.nctr), 'no criteria to reside'),
    h('div', { class: 'card' }, h('b', {}, t.delay_days), 'delay days'),
    h('div', { class: 'card' }, h('b', {}, t.discharges_today), 'discharges today'),
  ];
}

async function hospitalPage(code) {
  const known = reference.hospitals.find((x) => x.code === code);
  if (!known) return notFound();
  const boardPath = `/api/v1/boards/hospitals/${encodeURIComponent(code)}`;
  const first = await api('GET', boardPath);
  if (!first.ok) return cannotShow(first, `the flow board of ${hospitalName(code)}`);
  setTitle(hospitalName(code));
  const totals = h('div', { class: 'cards' });
  const wards = h('tbody');
  const reasons = h('tbody');
  const pathways = h('tbody');
  const chartBox = h('div', { class: 'grid charts' });
  const linkWards = session.role === 'ward';
  main.replaceChildren(
    h('h1', {}, hospitalName(code)), totals,
    h('h2', {}, 'Wards'),
    h('div', { class: 'scroll' }, h('table', { id: 'wards' },
      h('thead', {}, h('tr', {}, ['Ward', 'Occupied', 'Free', 'No criteria to reside', 'Delay days', 'Discharges today', 'EDD today', 'EDD overdue'].map((t) => h('th', { scope: 'col' }, t)))), wards)),
    h('div', { class: 'grid' },
      h('section', {}, h('h2', {}, 'Delays by reason'), h('table', { id: 'delays-by-reason' }, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Reason'), h('th', { scope: 'col' }, 'Open'))), reasons)),
      h('section', {}, h('h2', {}, 'Pathway mix'), h('table', { id: 'pathways' }, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Pathway'), h('th', { scope: 'col' }, 'Patients'))), pathways))),
    h('h2', {}, 'Last 30 days'), chartBox);
  const drawCharts = makeCharts(chartBox);
  const loadDaily = async () => {
    const daily = await api('GET', `/api/v1/boards/hospitals/${encodeURIComponent(code)}/daily?days=30`);
    if (daily.ok) drawCharts(daily.body.days);
  };
  const later = debounce(loadDaily, 1500);
  const render = (board) => {
    if (!board || !board.wards) return;
    totals.replaceChildren(...totalsCards(board.totals));
    patchRows(wards, board.wards, (w) => `ward:${w.ward}`, (w) => h('tr', { 'data-ward': w.ward },
      h('th', { scope: 'row' }, linkWards ? h('a', { href: `/ward/${w.ward}` }, wardName(w.ward)) : wardName(w.ward)),
      h('td', {}, `${w.occupied}/${w.beds}`), h('td', {}, w.free), h('td', {}, w.nctr), h('td', {}, w.delay_days),
      h('td', {}, w.discharges_today), h('td', {}, w.edd_today), h('td', {}, w.edd_overdue)));
    const byReason = Object.entries(board.delays_by_reason).sort((a, b) => b[1] - a[1]);
    patchRows(reasons, byReason.length ? byReason : [['', 0]], ([reason]) => `reason:${reason}`, ([reason, n]) => reason
      ? h('tr', {}, h('td', {}, `${reason}. ${reasonLabel(reason)}`), h('td', {}, n))
      : h('tr', {}, h('td', { colspan: 2 }, 'No open delays.')));
    patchRows(pathways, Object.entries(board.pathways), ([p]) => `pathway:${p}`, ([p, n]) => h('tr', {}, h('td', {}, p), h('td', {}, n)));
    later();
  };
  render(first.body);
  await loadDaily();
  subscribe(`hospital:${code}`, render, () => api('GET', boardPath));
}

async function systemPage() {
  const boardPath = '/api/v1/boards/system';
  const first = await api('GET', boardPath);
  if (!first.ok) return cannotShow(first, 'the system flow board');
  setTitle('System flow');
  const totals = h('div', { class: 'cards' });
  const hospitals = h('tbody');
  const teams = h('tbody');
  const chartBox = h('div', { class: 'grid charts' });
  main.replaceChildren(
    h('h1', {}, 'System flow'), totals,
    h('div', { class: 'grid' },
      h('section', {}, h('h2', {}, 'Hospitals'), h('div', { class: 'scroll' }, h('table', { id: 'hospitals' },
        h('thead', {}, h('tr', {}, ['Hospital', 'Occupied', 'Free', 'No criteria to reside', 'Delay days'].map((t) => h('th', { scope: 'col' }, t)))), hospitals))),
      h('section', {}, h('h2', {}, 'Handover waits by team'), h('div', { class: 'scroll' }, h('table', { id: 'teams' },
        h('thead', {}, h('tr', {}, ['Team', 'Waiting', 'Breached', 'Accepted'].map((t) => h('th', { scope: 'col' }, t)))), teams)))),
    h('h2', {}, 'Last 30 days'), chartBox);
  const drawCharts = makeCharts(chartBox);
  const loadDaily = async () => {
    const daily = await api('GET', '/api/v1/boards/system/daily?days=30');
    if (daily.ok) drawCharts(daily.body.days);
  };
  const later = debounce(loadDaily, 1500);
  const render = (board) => {
    if (!board || !board.hospitals) return;
    totals.replaceChildren(...totalsCards(board.totals));
    patchRows(hospitals, board.hospitals, (x) => `hospital:${x.hospital}`, (x) => h('tr', {},
      h('th', { scope: 'row' }, h('a', { href: `/hospital/${x.hospital}` }, hospitalName(x.hospital))),
      h('td', {}, `${x.occupied}/${x.beds}`), h('td', {}, x.free), h('td', {}, x.nctr), h('td', {}, x.delay_days)));
    patchRows(teams, board.teams, (t) => `team:${t.team}`, (t) => h('tr', {},
      h('th', { scope: 'row' }, teamName(t.team)), h('td', {}, t.waiting),
      h('td', {}, t.breached ? tag(`${t.breached} breached`, 'bad') : '0'), h('td', {}, t.accepted)));
    later();
  };
  render(first.body);
  await loadDaily();
  subscribe('system', render, () => api('GET', boardPath));
}

async function adminPage() {
  unsubscribe();
  setTitle('Administration');
  const list = (title, items, text) => [h('h2', {}, title), h('ul', {}, items.map((x) => h('li', {}, text(x))))];
  const access = h('section', { id: 'access', 'aria-labelledby': 'access-h' });
  const feed = h('section', { id: 'feed', 'aria-labelledby': 'feed-h' });
  const census = h('section', { id: 'census', 'aria-labelledby': 'census-h' });
  main.replaceChildren(h('h1', {}, 'Administration'),
    access,
    feed,
    census,
    h('h2', {}, 'Reference data'),
    h('p', {}, 'Administrators change hospitals (and the trust that runs each), wards, teams and care transfer hubs through the API (PUT /api/v1/hospitals|wards|teams|hubs/{code}); see ', h('a', { href: '/docs' }, 'the API documentation'), '. Who looked at a patient: GET /api/v1/audit?nhs_number=…'),
    ...list('Hospitals', reference.hospitals, (x) => `${x.code}: ${x.name}${x.trust ? ` (trust ${x.trust})` : ''}`),
    ...list('Wards', reference.wards, (w) => `${w.code}: ${w.name} (${w.hospital}, ${w.beds} beds)`),
    ...list('Teams', reference.teams, (t) => `${t.code}: ${t.name}, respond within ${t.response_sla_minutes} min`),
    ...list('Care transfer hubs', reference.hubs || [], (x) => `${x.code}: ${x.name} (${x.hospitals.join(', ')})`));
  await accessSection(access);
  await feedSection(feed);
  censusSection(census);
}

// The PAS's HL7 v2 ADT feed: messages Baton held (answered AE or AR) with
// why, retried here once the cause is fixed, and the PAS's locations mapped
// to Baton's wards and beds.
async function feedSection(section, said) {
  const [held, mapped] = await Promise.all([api('GET', '/api/v1/feeds/held'), api('GET', '/api/v1/feeds/locations')]);
  const field = (id, label) => [h('label', { for: id }, label), h('input', { id, name: id, type: 'text', autocomplete: 'off' })];
  const error = h('p', { class: 'form-error', role: 'alert', id: 'feed-error' });
  const done = h('p', { class: 'done', role: 'status', id: 'feed-done' }, said || '');
  const value = (id) => section.querySelector(`#${id}`).value.trim();
  const reload = (message) => feedSection(section, message);
  const map = actionButton('Map', {
    key: 'feed-map', action: 'map', onpress: () => guarded('feed-map', async () => {
      error.textContent = '';
      const body = { point_of_care: value('feed-poc'), pas_bed: value('feed-pas-bed'), ward: value('feed-ward') };
      const bed = value('feed-bed');
      if (bed) body.bed = bed;
      const answer = await api('PUT', '/api/v1/feeds/locations', body);
      if (!answer.ok) { error.textContent = problemText(answer, 'map'); return; }
      await reload(`Mapped ${body.point_of_care}${body.pas_bed ? ` bed ${body.pas_bed}` : ''} to ward ${body.ward}${bed ? ` bed ${bed}` : ''}.`);
    }),
  });
  map.id = 'feed-map';
  const retryButton = (m) => actionButton('Retry', {
    key: `retry:${m.id}`, action: 'retry', aria: `Retry message ${m.control_id || m.id}`,
    onpress: () => guarded(`retry:${m.id}`, async () => {
      error.textContent = '';
      const answer = await api('POST', `/api/v1/feeds/held/${m.id}/retry`, {});
      if (!answer.ok) { error.textContent = problemText(answer, 'retry'); return; }
      await reload(answer.body.applied ? `Message ${m.control_id} applied.` : `Message ${m.control_id} is still held (${answer.body.ack_code}).`);
    }),
  });
  const messages = held.ok ? held.body.messages : [];
  const locations = mapped.ok ? mapped.body.locations : [];
  section.replaceChildren(
    h('h2', { id: 'feed-h' }, 'Messages from the PAS'),
    h('p', {}, 'Admissions, transfers and discharges the patient administration system sent that Baton could not apply are held here with the reason. Fix the cause (map a ward, say) and retry.'),
    messages.length
      ? h('table', { id: 'feed-held' },
        h('caption', {}, 'Held messages'),
        h('thead', {}, h('tr', {}, ['Received', 'From', 'Message', 'Event', 'Why', ''].map((t) => h('th', { scope: 'col' }, t || h('span', { class: 'visually-hidden' }, 'Actions'))))),
        h('tbody', {}, messages.map((m) => h('tr', { 'data-held': String(m.id) },
          h('td', {}, new Date(m.received_at).toLocaleString('en-GB')),
          h('td', {}, [m.sending_application, m.sending_facility].filter(Boolean).join(' at ') || '—'),
          h('td', {}, m.control_id || '—'), h('td', {}, m.trigger || '—'),
          h('td', {}, `${m.ack_code}: ${m.reason}`), h('td', {}, retryButton(m))))))
      : h('p', { id: 'feed-none' }, 'No message is held.'),
    h('h3', {}, 'PAS locations'),
    h('p', {}, 'A point of care equal to a Baton ward code, and a bed equal to a bed label, need no mapping. Leave the PAS bed empty to map a whole point of care; leave the Baton bed empty to keep the PAS\'s bed.'),
    h('form', { id: 'feed-form', onsubmit: (e) => { e.preventDefault(); map.click(); } },
      ...field('feed-poc', 'PAS point of care'), ...field('feed-pas-bed', 'PAS bed'),
      ...field('feed-ward', 'Baton ward'), ...field('feed-bed', 'Baton bed'),
      error, done, map),
    locations.length
      ? h('ul', { id: 'feed-locations' }, locations.map((l) => h('li', {},
        `${l.point_of_care}${l.pas_bed ? ` bed ${l.pas_bed}` : ''} → ${l.ward}${l.bed ? ` bed ${l.bed}` : ''}`)))
      : h('p', {}, 'No mapping yet.'));
}

// Go-live of a hospital's PAS feed: its census of current inpatients (CSV)
// checked first (a dry run changes nothing), then brought in. Sent again,
// it admits nobody twice.
function censusSection(section) {
  const error = h('p', { class: 'form-error', role: 'alert', id: 'census-error' });
  const done = h('p', { class: 'done', role: 'status', id: 'census-done' });
  const results = h('div', { id: 'census-results' });
  let checked = null; // the facility and text of the last clean dry run
  const read = async () => {
    const facility = section.querySelector('#census-facility').value.trim();
    const file = section.querySelector('#census-file').files[0];
    if (!facility) { error.textContent = 'Enter the PAS\'s sending facility (MSH-4), as its ADT messages name it.'; return null; }
    if (!file) { error.textContent = 'Choose the census file (CSV) the PAS exported.'; return null; }
    return { facility, text: await file.text() };
  };
  const words = (row) => {
    if (row.outcome === 'admit') return `${row.ward} bed ${row.bed}`;
    if (row.outcome === 'already_open') return 'open already: left as it is';
    return `${row.field ? `${row.field}: ` : ''}${row.message} (${row.rule})`;
  };
  const show = (report) => {
    const verb = report.dry_run ? 'would admit' : 'admitted';
    done.textContent = `${report.dry_run ? 'Checked' : 'Imported'}: ${verb} ${report.admitted}, ${report.already_open} open already, ${report.refused} refused.`;
    results.replaceChildren(h('table', { id: 'census-rows' },
      h('caption', {}, report.dry_run ? 'What the census would do' : 'What the census did'),
      h('thead', {}, h('tr', {}, ['Line', 'Visit', 'Outcome', 'Details'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, report.rows.map((row) => h('tr', { 'data-visit': row.visit_number, 'data-outcome': row.outcome },
        h('td', {}, String(row.line)), h('td', {}, row.visit_number || '—'),
        h('td', {}, row.outcome === 'admit' ? (report.dry_run ? 'would admit' : 'admitted') : row.outcome === 'already_open' ? 'open already' : tag('refused', 'bad')),
        h('td', {}, words(row)))))));
  };
  const send = async (dryRun) => {
    error.textContent = '';
    const census = await read();
    if (!census) return;
    const query = `facility=${encodeURIComponent(census.facility)}${dryRun ? '&dry_run=true' : ''}`;
    const answer = await api('POST', `/api/v1/feeds/census?${query}`, census.text, 'text/csv');
    if (!answer.ok) { error.textContent = problemText(answer, dryRun ? 'check the census' : 'import the census'); return; }
    show(answer.body);
    checked = dryRun ? census : null;
    importButton.setAttribute('aria-disabled', checked ? 'false' : 'true');
    if (!dryRun) importButton.focus();
  };
  const check = actionButton('Check (changes nothing)', {
    key: 'census-check', action: 'census-check', onpress: () => guarded('census-check', () => send(true)),
  });
  check.id = 'census-check';
  const importButton = actionButton('Import', {
    key: 'census-import', action: 'census-import', kind: 'primary',
    onpress: () => guarded('census-import', async () => {
      if (!checked) { error.textContent = 'Check the census first: the import does what the check shows.'; return; }
      await send(false);
    }),
  });
  importButton.id = 'census-import';
  importButton.setAttribute('aria-disabled', 'true');
  // A new file or facility must be checked again before it is imported.
  const changed = () => { checked = null; importButton.setAttribute('aria-disabled', 'true'); };
  section.replaceChildren(
    h('h2', { id: 'census-h' }, 'Bring a hospital\'s inpatients in (census)'),
    h('p', {}, 'Before the PAS feed takes over, its census of current inpatients brings their open spells in at once: a CSV with a header row naming visit_number, nhs_number, family_name, given_name, date_of_birth (YYYY-MM-DD), point_of_care, bed and admitted_at (RFC 3339 or HL7). Each visit becomes the spell the feed\'s later messages for it will name. Check it first: that changes nothing. Visits already open are left as they are, so a census may be sent again.'),
    h('form', { id: 'census-form', onsubmit: (e) => { e.preventDefault(); check.click(); } },
      h('label', { for: 'census-facility' }, 'Sending facility (MSH-4)'),
      h('input', { id: 'census-facility', name: 'facility', type: 'text', autocomplete: 'off', oninput: changed }),
      h('label', { for: 'census-file' }, 'Census file (CSV)'),
      h('input', { id: 'census-file', name: 'census', type: 'file', accept: '.csv,text/csv', onchange: changed }),
      error, done, check, importButton),
    results);
}

// Who may use Baton beyond what the identity provider says: grants and
// revocations an admin makes here, each recorded with who, when and why.
function describeAccess(granted) {
  if (!granted) return 'access withdrawn';
  const scope = granted.hospital || granted.trust || granted.team || granted.hub;
  return `${granted.role}${scope ? ` ${scope}` : ''}`;
}

async function accessSection(section, said) {
  const answer = await api('GET', '/api/v1/access');
  const field = (id, label, attrs = {}) => [h('label', { for: id }, label), h('input', { id, name: id, type: 'text', ...attrs })];
  const role = h('select', { id: 'access-role', name: 'role' },
    ['ward', 'team', 'hub', 'system', 'admin'].map((r) => h('option', { value: r }, r)));
  const error = h('p', { class: 'form-error', role: 'alert', id: 'access-error' });
  const done = h('p', { class: 'done', role: 'status', id: 'access-done' }, said || '');
  const trusts = new Set((reference.hospitals || []).map((x) => x.trust).filter(Boolean));
  const value = (id) => section.querySelector(`#${id}`).value.trim();
  const reload = (message) => accessSection(section, message);
  const grant = actionButton('Grant', {
    key: 'access-grant', action: 'grant', onpress: () => guarded('access-grant', async () => {
      error.textContent = '';
      const sub = value('access-sub');
      if (!sub) { error.textContent = 'Enter the user id (as their sign-in names them).'; return; }
      const body = { name: value('access-name'), role: role.value };
      const scope = value('access-scope');
      const reason = value('access-reason');
      if (reason) body.reason = reason;
      if (scope && role.value === 'ward') body[trusts.has(scope) ? 'trust' : 'hospital'] = scope;
      if (scope && role.value === 'team') body.team = scope;
      if (scope && role.value === 'hub') body.hub = scope;
      const answer = await api('POST', `/api/v1/access/${encodeURIComponent(sub)}/grant`, body);
      if (!answer.ok) { error.textContent = problemText(answer, 'grant'); return; }
      await reload(`Granted ${describeAccess({ role: body.role, ...body })} to ${sub}.`);
    }),
  });
  grant.id = 'access-grant';
  const rows = answer.ok ? answer.body.users : [];
  const revokeButton = (user) => {
    const button = actionButton('Revoke', {
      key: `revoke:${user.sub}`, action: 'revoke', aria: `Revoke the access of ${user.name || user.sub}`,
      onpress: () => guarded(`revoke:${user.sub}`, async () => {
        error.textContent = '';
        const reason = value('access-reason');
        const answer = await api('POST', `/api/v1/access/${encodeURIComponent(user.sub)}/revoke`, reason ? { reason } : {});
        if (!answer.ok) { error.textContent = problemText(answer, 'revoke'); return; }
        await reload(`Revoked the access of ${user.sub}: their next request is refused.`);
      }),
    });
    return button;
  };
  const table = rows.length
    ? h('table', { id: 'access-users' },
      h('caption', {}, 'Users whose access Baton records'),
      h('thead', {}, h('tr', {}, ['User id', 'Name', 'Access', 'Changed by', 'When', ''].map((t) => h('th', { scope: 'col' }, t || h('span', { class: 'visually-hidden' }, 'Actions'))))),
      h('tbody', {}, rows.map((user) => h('tr', { 'data-sub': user.sub },
        h('td', {}, user.sub), h('td', {}, user.name || '—'),
        h('td', {}, user.state === 'revoked' ? 'access withdrawn' : describeAccess(user.granted)),
        h('td', {}, user.by.name), h('td', {}, new Date(user.at).toLocaleString('en-GB')),
        h('td', {}, user.state === 'revoked' ? '' : revokeButton(user))))))
    : h('p', {}, 'No grants or revocations yet: everyone\'s role comes from their identity provider.');
  const history = answer.ok ? answer.body.history : [];
  section.replaceChildren(
    h('h2', { id: 'access-h' }, 'Who may use Baton'),
    h('p', {}, 'A grant gives a user a role and scope whatever their identity provider says; a revocation refuses them (their next request, and any board they have open) until a grant. Each is recorded with who made it, when and why.'),
    h('form', { id: 'access-form', onsubmit: (e) => { e.preventDefault(); grant.click(); } },
      ...field('access-sub', 'User id', { autocomplete: 'off' }),
      ...field('access-name', 'Name', { autocomplete: 'off' }),
      h('label', { for: 'access-role' }, 'Role'), role,
      ...field('access-scope', 'Scope (hospital, trust, team or hub code)', { autocomplete: 'off' }),
      ...field('access-reason', 'Reason (kept in the record)', { autocomplete: 'off' }),
      error, done, grant),
    table,
    h('h3', {}, 'History'),
    history.length
      ? h('ol', { id: 'access-history' }, history.map((c) => h('li', {},
        `${new Date(c.at).toLocaleString('en-GB')}: ${c.by.name} ${c.granted ? `granted ${describeAccess(c.granted)} to` : 'revoked the access of'} ${c.sub}${c.reason ? ` (${c.reason})` : ''}`)))
      : h('p', {}, 'Nothing yet.'));
}

// ---------- routing ----------

let routing = 0;
async function route() {
  const mine = ++routing;
  closePanel({ restore: false });
  rowMessages.clear();
  referralDetails.clear();
  const path = location.pathname;
  if (!session) {
    const me = await api('GET', '/api/v1/session');
    if (mine !== routing) return undefined;
    if (!me.ok) {
      // Signed out: sign in here, then this page opens (a deep link survives).
      header();
      return signInPage();
    }
    session = me.body;
  }
  await loadReference();
  if (mine !== routing) return undefined;
  header();
  const parts = path.split('/').slice(1);
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  const [page, raw] = parts;
  let code = raw;
  try { code = raw && decodeURIComponent(raw); } catch (_) { return notFound(); }
  unsubscribe();
  if (!page) return go(home(session));
  if (parts.length === 2 && code) {
    if (page === 'ward') return wardPage(code);
    if (page === 'team') return teamPage(code);
    if (page === 'hospital') return hospitalPage(code);
    if (page === 'hub') return hubPage(code);
  }
  if (parts.length === 1 && page === 'system') return systemPage();
  if (parts.length === 1 && page === 'admin') return adminPage();
  return notFound();
}

document.addEventListener('click', (event) => {
  const link = event.target.closest('a[href^="/"]');
  // Pages of the server's own (the API's documentation, sign-in through
  // the provider) are real navigations.
  const href = link && link.getAttribute('href');
  if (!link || href.startsWith('/docs') || href.startsWith('/auth/') || event.ctrlKey || event.metaKey || event.shiftKey) return;
  event.preventDefault();
  go(link.getAttribute('href'));
});
window.addEventListener('popstate', route);
route();
