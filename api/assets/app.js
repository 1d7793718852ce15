// Baton's pages: plain JavaScript, no build step, every asset served by
// baton. One shell (index.html) routes by path. Tables re-render on live
// updates (server-sent events); forms live in a side panel that live updates
// never touch, so nothing a user is typing is lost.

const TOKEN_KEY = 'baton.token';
const main = document.getElementById('main');
const panel = document.getElementById('panel');
const live = document.getElementById('live');
let source = null;
let session = null;
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
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const tag = (text, kind) => h('span', { class: `tag ${kind || ''}` }, text);
const token = () => sessionStorage.getItem(TOKEN_KEY);

async function api(method, path, body) {
  const headers = { 'Accept': 'application/json' };
  if (token()) headers['Authorization'] = `Bearer ${token()}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    return { ok: false, status: 0, body: { detail: 'Baton cannot be reached. Check the connection and try again.' } };
  }
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (response.status === 401 && path !== '/api/v1/session') {
    sessionStorage.removeItem(TOKEN_KEY);
    go('/');
  }
  return { ok: response.ok, status: response.status, body: data };
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

function formatDate(value) {
  if (!value) return '';
  const d = new Date(value.length === 10 ? `${value}T12:00:00` : value);
  return d.toLocaleDateString('en-GB', { day: 'numeric', month: 'short' });
}

function nhs(n) {
  return n && n.length === 10 ? `${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6)}` : n;
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

function showFreshness() {
  const silent = lastHeard > 0 && Date.now() - lastHeard > SILENT_AFTER_MS;
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

function subscribe(board, onBoard) {
  if (source) source.close();
  live.textContent = 'Connecting…';
  live.className = 'live off';
  const url = `/api/v1/boards/stream?board=${encodeURIComponent(board)}&access_token=${encodeURIComponent(token())}`;
  source = new EventSource(url);
  const handle = (event) => {
    try {
      const data = JSON.parse(event.data);
      onBoard(data.board);
      heard(data.freshness);
    } catch (_) { /* keep the last board */ }
  };
  source.addEventListener('board', handle);
  source.addEventListener('change', handle);
  source.addEventListener('freshness', (event) => {
    try { heard(JSON.parse(event.data)); } catch (_) { /* the next one will do */ }
  });
  clearInterval(freshnessTimer);
  freshnessTimer = setInterval(showFreshness, 1000);
  source.onopen = () => { showFreshness(); };
  source.onerror = async () => {
    live.textContent = 'Reconnecting…';
    live.className = 'live off';
    // A stream refused for good (the token expired): sign in again.
    if (source.readyState === EventSource.CLOSED) {
      const me = await api('GET', '/api/v1/session');
      if (me.ok) setTimeout(() => subscribe(board, onBoard), 1000);
    }
  };
}

function unsubscribe() {
  if (source) source.close();
  source = null;
  clearInterval(freshnessTimer);
  freshnessTimer = null;
  lastHeard = 0;
  freshness = { current: false, up_to_date_at: null };
  stale.hidden = true;
  stale.textContent = '';
  live.textContent = '';
  live.className = 'live';
}

// ---------- forms ----------

// A form whose fields are named as the API's JSON fields. `toBody` turns the
// form's values into the request body; errors come back next to each field.
function commandForm({ command, title, fields, submit, send }) {
  const form = h('form', { 'data-command': command, novalidate: true });
  form.append(h('h3', {}, title));
  const formError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const done = h('p', { class: 'done', role: 'status' });
  for (const field of fields) {
    const id = `${command}-${field.name}`;
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
    if (field.value !== undefined) input.value = field.value;
    if (field.required) input.required = true;
    form.append(input, h('p', { class: 'field-error', 'data-for': field.name, hidden: true, id: `${id}-error` }));
  }
  form.append(formError, h('button', { type: 'submit' }, submit || title), done);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    for (const el of form.querySelectorAll('.field-error')) { el.hidden = true; el.textContent = ''; }
    for (const el of form.querySelectorAll('.invalid')) { el.classList.remove('invalid'); el.removeAttribute('aria-invalid'); }
    formError.hidden = true;
    done.textContent = '';
    const values = Object.fromEntries(new FormData(form).entries());
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    const answer = await send(values);
    button.disabled = false;
    if (answer.ok) {
      done.textContent = 'Saved.';
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
      input.setAttribute('aria-describedby', slot ? slot.id : '');
      if (!placed) input.focus();
    }
  }
  if (!placed) {
    formError.textContent = problem.detail || `The request failed (${answer.status}).`;
    formError.hidden = false;
  } else {
    const first = form.querySelector('.invalid');
    if (first) first.focus();
  }
}

function openPanel(title, ...content) {
  panel.replaceChildren(
    h('button', { class: 'close secondary', type: 'button', onclick: closePanel }, 'Close'),
    h('h2', { id: 'panel-title' }, title),
    ...content,
  );
  panel.setAttribute('aria-labelledby', 'panel-title');
  panel.hidden = false;
  panelGeneration += 1;
  const first = panel.querySelector('input, select, textarea, button:not(.close)');
  (first || panel.querySelector('button')).focus();
}

let panelGeneration = 0;

function closePanel() {
  panel.hidden = true;
  panel.replaceChildren();
  panelGeneration += 1;
}

// Closes the panel shortly after a success, unless another was opened since.
function closeSoon() {
  const mine = panelGeneration;
  setTimeout(() => { if (panelGeneration === mine) closePanel(); }, 600);
}

document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && !panel.hidden) closePanel();
});

// ---------- reference data ----------

async function loadReference() {
  if (reference.loaded) return;
  const [wards, teams, reasons, hospitals] = await Promise.all([
    api('GET', '/api/v1/wards'), api('GET', '/api/v1/teams'),
    api('GET', '/api/v1/delay-reasons'), api('GET', '/api/v1/hospitals'),
  ]);
  reference.wards = wards.ok ? wards.body : [];
  reference.teams = teams.ok ? teams.body : [];
  reference.reasons = reasons.ok ? reasons.body.reasons : [];
  reference.hospitals = hospitals.ok ? hospitals.body : [];
  reference.loaded = true;
}

const reasonLabel = (code) => (reference.reasons.find((r) => r.code === code) || { label: code }).label;
const wardName = (code) => (reference.wards.find((w) => w.code === code) || { name: code }).name;
const hospitalName = (code) => (reference.hospitals.find((x) => x.code === code) || { name: code }).name;

// ---------- pages ----------

async function signInPage() {
  unsubscribe();
  const dev = await api('GET', '/api/v1/dev/sign-in');
  const tokenBox = h('textarea', { id: 'token', rows: 4, 'aria-describedby': 'token-help' });
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const signIn = async (value) => {
    sessionStorage.setItem(TOKEN_KEY, value.trim());
    const me = await api('GET', '/api/v1/session');
    if (!me.ok) {
      sessionStorage.removeItem(TOKEN_KEY);
      error.textContent = (me.body && me.body.detail) || 'That token was not accepted.';
      error.hidden = false;
      return;
    }
    session = me.body;
    go(home(session));
  };
  const sections = [
    h('section', {},
      h('h2', {}, 'Sign in with a token'),
      h('label', { for: 'token' }, 'Token'),
      tokenBox,
      h('p', { id: 'token-help' }, 'Paste the bearer token your organisation issued (or one printed by `baton token`).'),
      error,
      h('button', { id: 'sign-in', type: 'button', onclick: () => signIn(tokenBox.value) }, 'Sign in')),
  ];
  if (dev.ok && dev.body.enabled) {
    const role = h('select', { id: 'dev-role' },
      ['ward', 'team', 'system', 'admin'].map((r) => h('option', { value: r }, r)));
    const scope = h('input', { id: 'dev-scope', type: 'text', value: 'POOLE', 'aria-describedby': 'dev-help' });
    const name = h('input', { id: 'dev-name', type: 'text', value: 'Developer' });
    const devError = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const hospitals = dev.body.hospitals || [];
    const teams = dev.body.teams || [];
    const scopes = { ward: hospitals[0] || '', team: teams[0] || '', system: '', admin: '' };
    scope.value = scopes.ward;
    const known = h('datalist', { id: 'dev-scopes' });
    scope.setAttribute('list', 'dev-scopes');
    const fill = () => known.replaceChildren(...(role.value === 'team' ? teams : hospitals).map((c) => h('option', { value: c })));
    fill();
    role.addEventListener('change', () => { scope.value = scopes[role.value] || ''; fill(); });
    sections.push(h('section', {},
      h('h2', {}, 'Development sign-in'),
      h('p', { id: 'dev-help' }, 'Only on the embedded default, for trying Baton out: pick a role and its scope (a hospital code for a ward, a team code for a team).'),
      h('label', { for: 'dev-role' }, 'Role'), role,
      h('label', { for: 'dev-scope' }, 'Scope (hospital or team code)'), scope, known,
      h('label', { for: 'dev-name' }, 'Your name'), name,
      devError,
      h('button', {
        id: 'dev-sign-in', type: 'button', onclick: async () => {
          const body = { role: role.value, name: name.value || 'Developer' };
          if (role.value === 'ward') body.hospital = scope.value;
          if (role.value === 'team') body.team = scope.value;
          const answer = await api('POST', '/api/v1/dev/sign-in', body);
          if (!answer.ok) {
            devError.textContent = (answer.body && answer.body.detail) || 'Sign-in failed.';
            devError.hidden = false;
            return;
          }
          await signIn(answer.body.token);
        },
      }, 'Sign in')));
  }
  main.replaceChildren(h('div', { class: 'signin' }, h('h1', {}, 'Sign in to Baton'), ...sections));
}

function home(me) {
  if (me.role === 'ward') return `/hospital/${me.hospital}`;
  if (me.role === 'team') return `/team/${me.team}`;
  if (me.role === 'system') return '/system';
  return '/admin';
}

function header() {
  const who = document.getElementById('who');
  const out = document.getElementById('sign-out');
  const nav = document.getElementById('nav');
  nav.replaceChildren();
  if (!session) {
    who.textContent = '';
    out.hidden = true;
    return;
  }
  who.textContent = `${session.name} (${session.role}${session.hospital ? ` ${session.hospital}` : ''}${session.team ? ` ${session.team}` : ''})`;
  out.hidden = false;
  out.onclick = () => { sessionStorage.removeItem(TOKEN_KEY); session = null; header(); go('/'); };
  if (session.role === 'ward') {
    nav.append(h('a', { href: `/hospital/${session.hospital}` }, 'Hospital'));
    for (const ward of reference.wards.filter((w) => w.hospital === session.hospital)) {
      nav.append(h('a', { href: `/ward/${ward.code}` }, ward.name));
    }
  } else if (session.role === 'team') {
    nav.append(h('a', { href: `/team/${session.team}` }, 'Handover inbox'));
  } else if (session.role === 'system') {
    nav.append(h('a', { href: '/system' }, 'System'));
    for (const hospital of reference.hospitals) nav.append(h('a', { href: `/hospital/${hospital.code}` }, hospital.name));
  }
}

// ----- ward page -----

function bedRow(row, ward) {
  const tr = h('tr', { 'data-bed': row.bed, class: row.spell_id ? '' : 'free' });
  if (!row.spell_id) {
    tr.append(h('th', { scope: 'row' }, row.bed), h('td', { colspan: 8 }, 'Free'),
      h('td', {}, h('button', {
        type: 'button', 'data-action': 'admit', 'aria-label': `Admit to bed ${row.bed}`,
        onclick: () => admitPanel(ward, row.bed),
      }, 'Admit')));
    return tr;
  }
  const p = row.patient || {};
  const edd = row.expected_discharge_date
    ? [formatDate(row.expected_discharge_date), row.edd_overdue ? tag('Overdue', 'bad') : null]
    : tag('No EDD', 'warn');
  const ctr = {
    does_not_meet: tag('No criteria to reside', 'bad'),
    meets: tag('Meets criteria', 'ok'),
    not_reviewed: tag('Not reviewed', 'warn'),
  }[row.criteria_to_reside] || '';
  const drd = row.discharge_ready_date
    ? [formatDate(row.discharge_ready_date), ' ', tag(`${row.delay_days} delay day${row.delay_days === 1 ? '' : 's'}`, row.delay_days > 0 ? 'bad' : 'warn')]
    : '';
  const delays = row.open_delays.map((d) => h('div', {}, tag(d.reason_code), ' ', d.reason));
  const referrals = row.referrals.map((r) => h('div', {},
    `${r.team}: `, tag(r.status, r.sla_breached ? 'bad' : ''), r.sla_breached ? tag('SLA breached', 'bad') : null));
  tr.append(
    h('th', { scope: 'row' }, row.bed),
    h('td', {}, h('strong', {}, `${p.family_name}, ${p.given_name}`), h('br'), h('small', {}, nhs(p.nhs_number))),
    h('td', {}, row.days_in_hospital),
    h('td', {}, edd), h('td', {}, ctr), h('td', {}, drd),
    h('td', {}, row.pathway || tag('None', 'warn')),
    h('td', {}, delays), h('td', {}, referrals),
    h('td', {}, h('button', {
      type: 'button', 'data-action': 'open', 'aria-label': `Actions for bed ${row.bed}, ${p.family_name}`,
      onclick: () => spellPanel(ward, row.spell_id),
    }, 'Actions')),
  );
  return tr;
}

async function wardPage(code) {
  await loadReference();
  const ward = reference.wards.find((w) => w.code === code);
  if (!ward) return notFound();
  const totals = h('div', { class: 'cards', id: 'totals' });
  const body = h('tbody');
  const table = h('table', { id: 'beds' },
    h('caption', { class: 'skip' }, `Beds on ${ward.name}`),
    h('thead', {}, h('tr', {}, ['Bed', 'Patient', 'Days', 'EDD', 'Criteria to reside', 'Discharge ready / delay', 'Pathway', 'Open delays', 'Referrals', ''].map((t) => h('th', { scope: 'col' }, t)))),
    body);
  main.replaceChildren(h('h1', {}, `${ward.name} `, h('small', {}, `(${ward.code}, ${hospitalName(ward.hospital)})`)), totals, h('div', { class: 'scroll' }, table));
  subscribe(`ward:${code}`, (board) => {
    const t = board.totals;
    totals.replaceChildren(
      h('div', { class: 'card' }, h('b', {}, t.occupied), 'occupied'),
      h('div', { class: 'card' }, h('b', {}, t.free), 'free'),
      h('div', { class: 'card' }, h('b', {}, t.beds), 'beds'),
      h('div', { class: 'card' }, h('b', {}, t.nctr), 'no criteria to reside'));
    body.replaceChildren(...board.beds.map((row) => bedRow(row, ward)));
  });
}

function admitPanel(ward, bed) {
  const send = (v) => api('POST', '/api/v1/spells', {
    nhs_number: v.nhs_number, family_name: v.family_name, given_name: v.given_name,
    date_of_birth: v.date_of_birth, ward: ward.code, bed: v.bed, admitted_at: instant(v.admitted_at),
  });
  openPanel(`Admit to ${ward.name}, bed ${bed}`, commandForm({
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
      const answer = await send(v);
      if (answer.ok) closeSoon();
      return answer;
    },
  }));
}

async function spellPanel(ward, spellId) {
  const spell = await api('GET', `/api/v1/spells/${spellId}`);
  if (!spell.ok) return openPanel('Not available', h('p', {}, (spell.body && spell.body.detail) || 'This spell cannot be shown.'));
  const s = spell.body;
  const p = s.patient;
  const post = (tail, body) => api('POST', `/api/v1/spells/${spellId}/${tail}`, body);
  const refresh = (answer) => { if (answer.ok) setTimeout(() => spellPanel(ward, spellId), 400); return answer; };
  const reasons = reference.reasons.map((r) => [r.code, `${r.code}. ${r.label}`]);
  const teams = reference.teams.map((t) => [t.code, t.name]);
  const services = ['reablement', 'home_care', 'district_nursing', 'community_rehab_bed', 'care_home', 'social_work_assessment', 'hospice', 'other'].map((x) => [x, x.replaceAll('_', ' ')]);
  const pathways = [['P0', 'P0: home, no new support'], ['P1', 'P1: home with support'], ['P2', 'P2: short-term bed'], ['P3', 'P3: 24-hour care']];
  const wards = reference.wards.filter((w) => w.hospital === ward.hospital).map((w) => [w.code, w.name]);
  const destinations = ['usual_residence', 'usual_residence_with_support', 'community_rehab_bed', 'care_home_new', 'care_home_usual', 'hospice', 'other_acute_trust', 'died', 'other'].map((x) => [x, x.replaceAll('_', ' ')]);
  const forms = [];
  const open = s.status === 'open';
  if (open) {
    forms.push(
      commandForm({ command: 'edd', title: 'Expected discharge date', submit: 'Set EDD',
        fields: [{ name: 'date', label: 'Expected discharge date', type: 'date', value: s.expected_discharge_date || today(1) }],
        send: async (v) => refresh(await post('expected-discharge-date', { date: v.date })) }),
      commandForm({ command: 'review', title: 'Criteria-to-reside review', submit: 'Record review',
        fields: [
          { name: 'meets_criteria_to_reside', label: 'Does the patient meet the criteria to reside?', options: [['true', 'Yes, meets the criteria'], ['false', 'No, no criteria to reside']] },
          { name: 'at', label: 'Reviewed at', type: 'datetime-local', value: localNow() }],
        send: async (v) => refresh(await post('criteria-review', { meets_criteria_to_reside: v.meets_criteria_to_reside === 'true', at: instant(v.at) })) }),
      commandForm({ command: 'pathway', title: 'Discharge pathway', submit: 'Set pathway',
        fields: [{ name: 'pathway', label: 'Pathway', options: pathways, value: s.pathway || 'P0' }],
        send: async (v) => refresh(await post('pathway', { pathway: v.pathway })) }),
      commandForm({ command: 'delay', title: 'Record a delay', submit: 'Record delay',
        fields: [
          { name: 'reason_code', label: 'Reason', options: reasons },
          { name: 'note', label: 'Note (optional)', type: 'textarea' },
          { name: 'at', label: 'Delayed since', type: 'datetime-local', value: localNow() }],
        send: async (v) => refresh(await post('delays', { reason_code: v.reason_code, note: v.note || null, at: instant(v.at) })) }),
    );
    for (const delay of s.delays.filter((d) => !d.resolved_at)) {
      forms.push(commandForm({ command: 'resolve', title: `Resolve delay ${delay.delay_id}: ${delay.reason.label}`, submit: 'Resolve',
        fields: [{ name: 'at', label: 'Resolved at', type: 'datetime-local', value: localNow() }],
        send: async (v) => refresh(await post(`delays/${delay.delay_id}/resolve`, { at: instant(v.at) })) }));
    }
    forms.push(
      commandForm({ command: 'raise', title: 'Refer to a community team', submit: 'Raise referral',
        fields: [
          { name: 'team', label: 'Team', options: teams },
          { name: 'service', label: 'Service', options: services },
          { name: 'pathway', label: 'Pathway', options: pathways.slice(1), value: s.pathway && s.pathway !== 'P0' ? s.pathway : 'P1' },
          { name: 'summary', label: 'What the team needs to know', type: 'textarea' }],
        send: async (v) => refresh(await api('POST', '/api/v1/referrals', { spell_id: spellId, team: v.team, service: v.service, pathway: v.pathway, summary: v.summary })) }),
      commandForm({ command: 'transfer', title: 'Transfer', submit: 'Transfer',
        fields: [
          { name: 'ward', label: 'To ward', options: wards, value: ward.code },
          { name: 'bed', label: 'To bed' },
          { name: 'at', label: 'Transferred at', type: 'datetime-local', value: localNow() }],
        send: async (v) => refresh(await post('transfer', { ward: v.ward, bed: v.bed, at: instant(v.at) })) }),
      commandForm({ command: 'discharge', title: 'Discharge', submit: 'Discharge',
        fields: [
          { name: 'destination', label: 'Destination', options: destinations },
          { name: 'at', label: 'Discharged at', type: 'datetime-local', value: localNow() }],
        send: async (v) => refresh(await post('discharge', { destination: v.destination, at: instant(v.at) })) }),
    );
  }
  const board = await api('GET', `/api/v1/boards/wards/${ward.code}`);
  const row = board.ok ? board.body.beds.find((b) => b.spell_id === spellId) : null;
  let activeReferrals = 0;
  for (const referral of row ? row.referrals : []) {
    const details = await api('GET', `/api/v1/referrals/${referral.referral_id}`);
    if (!details.ok) continue;
    const r = details.body;
    // Only an on-hold referral takes an answer: a team that accepted or
    // declined without one has moved on.
    const pending = r.status === 'on-hold' ? (r.exchanges || []).find((x) => !x.answer) : null;
    if (pending) {
      forms.push(commandForm({ command: 'answer', title: `${r.team} asks: ${pending.question}`, submit: 'Send answer',
        fields: [{ name: 'answer', label: 'Answer', type: 'textarea' }],
        send: async (v) => refresh(await api('POST', `/api/v1/referrals/${r.id}/provide-information`, { answer: v.answer })) }));
    }
    if (!['rejected', 'cancelled', 'completed'].includes(r.status)) {
      activeReferrals += 1;
      forms.push(commandForm({ command: 'withdraw', title: `Withdraw the referral to ${r.team} (${r.status})`, submit: 'Withdraw',
        fields: [{ name: 'reason', label: 'Why', type: 'textarea' }],
        send: async (v) => refresh(await api('POST', `/api/v1/referrals/${r.id}/withdraw`, { reason: v.reason })) }));
    }
  }
  const correction = (command, title, tail) => commandForm({ command, title, submit: title,
    fields: [{ name: 'reason', label: 'Why is this a correction?', type: 'textarea' }],
    send: async (v) => refresh(await post(tail, { reason: v.reason })) });
  const corrections = [];
  if (s.status === 'discharged') corrections.push(correction('cancel-discharge', 'Cancel the discharge', 'cancel-discharge'));
  if (open && s.transfers.length) corrections.push(correction('cancel-transfer', 'Cancel the last transfer', 'cancel-transfer'));
  if (open) {
    // The API refuses this while referrals are active (409): say so first.
    if (activeReferrals) corrections.push(h('p', { class: 'hint', id: 'cancel-admission-hint' }, 'An admission with active referrals cannot be cancelled: withdraw them above first, so each team is told.'));
    corrections.push(correction('cancel-admission', 'Cancel the admission (entered in error)', 'cancel-admission'));
  }
  openPanel(`${p.family_name}, ${p.given_name}`,
    h('p', {}, `NHS number ${nhs(p.nhs_number)}, born ${new Date(`${p.date_of_birth}T12:00:00`).toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric' })}. Bed ${s.placement.bed}, ${wardName(s.placement.ward)}. Status: ${s.status}.`),
    ...forms,
    corrections.length ? h('h2', {}, 'Corrections') : null,
    ...corrections);
}

// ----- team page -----

async function teamPage(code) {
  await loadReference();
  const team = reference.teams.find((t) => t.code === code);
  if (!team) return notFound();
  const counts = h('div', { class: 'cards', id: 'counts' });
  const body = h('tbody');
  const table = h('table', { id: 'referrals' },
    h('caption', { class: 'skip' }, 'Referrals waiting for an answer'),
    h('thead', {}, h('tr', {}, ['Patient', 'From', 'Service', 'Status', 'Waiting', 'Response due', 'Planned start', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
    body);
  main.replaceChildren(h('h1', {}, `${team.name}: handover inbox`), counts, h('div', { class: 'scroll' }, table));
  subscribe(`team:${code}`, (board) => {
    counts.replaceChildren(...Object.entries(board.counts).map(([status, n]) => h('div', { class: 'card' }, h('b', {}, n), status)));
    body.replaceChildren(...(board.referrals.length ? board.referrals.map(referralRow) : [h('tr', {}, h('td', { colspan: 8 }, 'No referrals waiting.'))]));
  });
}

function referralRow(r) {
  const sla = r.sla_breached ? tag('Breached', 'bad')
    : r.sla_minutes_left !== null && r.sla_minutes_left !== undefined ? tag(`${r.sla_minutes_left} min left`, r.sla_minutes_left < 30 ? 'warn' : '')
      : 'Answered';
  const act = (action, label, handler) => h('button', { type: 'button', class: 'secondary', 'data-action': action, 'aria-label': `${label}: ${r.patient.family_name}`, onclick: handler }, label);
  const post = (tail, body) => api('POST', `/api/v1/referrals/${r.id}/${tail}`, body);
  const actions = [];
  if (r.status === 'requested') actions.push(act('acknowledge', 'Acknowledge', async () => {
    const a = await post('acknowledge', {});
    if (!a.ok) alert((a.body && a.body.detail) || `Not acknowledged (${a.status}).`);
  }));
  if (['requested', 'received', 'on-hold'].includes(r.status)) {
    actions.push(
      act('accept', 'Accept', () => referralPanel(r, commandForm({ command: 'accept', title: 'Accept', submit: 'Accept',
        fields: [{ name: 'planned_start', label: 'Planned start', type: 'date', value: today(1) }],
        send: async (v) => closeOnSuccess(await post('accept', { planned_start: v.planned_start })) }))),
      act('decline', 'Decline', () => referralPanel(r, commandForm({ command: 'decline', title: 'Decline', submit: 'Decline',
        fields: [{ name: 'reason', label: 'Reason', type: 'textarea' }],
        send: async (v) => closeOnSuccess(await post('decline', { reason: v.reason })) }))));
  }
  if (['requested', 'received'].includes(r.status)) {
    actions.push(
      act('ask', 'Ask for information', () => referralPanel(r, commandForm({ command: 'ask', title: 'Ask the ward', submit: 'Send question',
        fields: [{ name: 'question', label: 'Question', type: 'textarea' }],
        send: async (v) => closeOnSuccess(await post('request-information', { question: v.question })) }))));
  }
  if (r.status === 'accepted') {
    actions.push(act('start-care', 'Start care', () => referralPanel(r, commandForm({ command: 'start-care', title: 'Start care', submit: 'Start care',
      fields: [{ name: 'at', label: 'Care started at', type: 'datetime-local', value: localNow() }],
      send: async (v) => closeOnSuccess(await post('start-care', { at: instant(v.at) })) }))));
  }
  return h('tr', { 'data-referral': r.id },
    h('th', { scope: 'row' }, `${r.patient.family_name}, ${r.patient.given_name}`, h('br'), h('small', {}, nhs(r.patient.nhs_number))),
    h('td', {}, `${wardName(r.ward)} (${r.hospital})`),
    h('td', {}, `${r.service.replaceAll('_', ' ')}, ${r.pathway}`),
    h('td', {}, tag(r.status, r.status === 'on-hold' ? 'warn' : ''), r.escalated ? tag('Escalated', 'bad') : null),
    h('td', {}, `${Math.floor(r.age_minutes / 60)} h ${r.age_minutes % 60} min`),
    h('td', {}, sla),
    h('td', {}, r.planned_start ? formatDate(r.planned_start) : ''),
    h('td', {}, actions));
}

function closeOnSuccess(answer) {
  if (answer.ok) closeSoon();
  return answer;
}

async function referralPanel(row, form) {
  const details = await api('GET', `/api/v1/referrals/${row.id}`);
  const r = details.ok ? details.body : null;
  openPanel(`${row.patient.family_name}, ${row.patient.given_name}`,
    r ? h('p', {}, r.summary) : null,
    r && r.exchanges && r.exchanges.length ? h('ul', {}, r.exchanges.map((x) => h('li', {}, `Q: ${x.question}`, h('br'), `A: ${x.answer || '(not yet answered)'}`))) : null,
    form);
}

// ----- hospital and system pages -----

function chart(id, title, days, value) {
  const values = days.map(value);
  const max = Math.max(1, ...values);
  const w = 300;
  const hgt = 100;
  const step = days.length > 1 ? w / (days.length - 1) : w;
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(hgt - (v / max) * (hgt - 10)).toFixed(1)}`).join(' ');
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${hgt + 12}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `${title}: from ${values[0]} to ${values[values.length - 1]} over ${days.length} days, highest ${max}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  line.setAttribute('points', points);
  svg.append(line);
  for (const [x, text, anchor] of [[0, formatDate(days[0].date), 'start'], [w, formatDate(days[days.length - 1].date), 'end']]) {
    const label = document.createElementNS('http://www.w3.org/2000/svg', 'text');
    label.setAttribute('x', x); label.setAttribute('y', hgt + 11); label.setAttribute('text-anchor', anchor);
    label.textContent = text;
    svg.append(label);
  }
  const table = h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Date'), h('th', { scope: 'col' }, title))),
    h('tbody', {}, days.map((d, i) => h('tr', {}, h('td', {}, d.date), h('td', {}, values[i])))));
  return h('figure', { class: 'chart', id },
    h('figcaption', {}, h('strong', {}, title), ` (today: ${values[values.length - 1]})`),
    svg, h('details', {}, h('summary', {}, 'Figures as a table'), table));
}

function charts(container, days) {
  container.replaceChildren(
    chart('chart-nctr', 'Patients with no criteria to reside', days, (d) => d.nctr),
    chart('chart-discharges', 'Discharges', days, (d) => d.discharges),
    chart('chart-delay-days', 'Delay days', days, (d) => d.delay_days));
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

function debounce(fn, ms) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

async function hospitalPage(code) {
  await loadReference();
  if (!reference.hospitals.find((x) => x.code === code)) return notFound();
  const totals = h('div', { class: 'cards' });
  const wards = h('tbody');
  const reasons = h('tbody');
  const pathways = h('tbody');
  const chartBox = h('div', { class: 'grid' });
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
  const loadDaily = async () => {
    const daily = await api('GET', `/api/v1/boards/hospitals/${code}/daily?days=30`);
    if (daily.ok) charts(chartBox, daily.body.days);
  };
  const later = debounce(loadDaily, 1500);
  await loadDaily();
  subscribe(`hospital:${code}`, (board) => {
    totals.replaceChildren(...totalsCards(board.totals));
    wards.replaceChildren(...board.wards.map((w) => h('tr', { 'data-ward': w.ward },
      h('th', { scope: 'row' }, linkWards ? h('a', { href: `/ward/${w.ward}` }, wardName(w.ward)) : wardName(w.ward)),
      h('td', {}, `${w.occupied}/${w.beds}`), h('td', {}, w.free), h('td', {}, w.nctr), h('td', {}, w.delay_days),
      h('td', {}, w.discharges_today), h('td', {}, w.edd_today), h('td', {}, w.edd_overdue))));
    reasons.replaceChildren(...Object.entries(board.delays_by_reason).sort((a, b) => b[1] - a[1])
      .map(([reason, n]) => h('tr', {}, h('td', {}, `${reason}. ${reasonLabel(reason)}`), h('td', {}, n))));
    pathways.replaceChildren(...Object.entries(board.pathways).map(([p, n]) => h('tr', {}, h('td', {}, p), h('td', {}, n))));
    later();
  });
}

async function systemPage() {
  await loadReference();
  const totals = h('div', { class: 'cards' });
  const hospitals = h('tbody');
  const teams = h('tbody');
  const chartBox = h('div', { class: 'grid' });
  main.replaceChildren(
    h('h1', {}, 'System flow'), totals,
    h('div', { class: 'grid' },
      h('section', {}, h('h2', {}, 'Hospitals'), h('div', { class: 'scroll' }, h('table', { id: 'hospitals' },
        h('thead', {}, h('tr', {}, ['Hospital', 'Occupied', 'Free', 'No criteria to reside', 'Delay days'].map((t) => h('th', { scope: 'col' }, t)))), hospitals))),
      h('section', {}, h('h2', {}, 'Handover waits by team'), h('div', { class: 'scroll' }, h('table', { id: 'teams' },
        h('thead', {}, h('tr', {}, ['Team', 'Waiting', 'Breached', 'Accepted'].map((t) => h('th', { scope: 'col' }, t)))), teams)))),
    h('h2', {}, 'Last 30 days'), chartBox);
  const loadDaily = async () => {
    const daily = await api('GET', '/api/v1/boards/system/daily?days=30');
    if (daily.ok) charts(chartBox, daily.body.days);
  };
  const later = debounce(loadDaily, 1500);
  await loadDaily();
  subscribe('system', (board) => {
    totals.replaceChildren(...totalsCards(board.totals));
    hospitals.replaceChildren(...board.hospitals.map((x) => h('tr', {},
      h('th', { scope: 'row' }, h('a', { href: `/hospital/${x.hospital}` }, hospitalName(x.hospital))),
      h('td', {}, `${x.occupied}/${x.beds}`), h('td', {}, x.free), h('td', {}, x.nctr), h('td', {}, x.delay_days))));
    const teamName = (c) => (reference.teams.find((t) => t.code === c) || { name: c }).name;
    teams.replaceChildren(...board.teams.map((t) => h('tr', {},
      h('th', { scope: 'row' }, teamName(t.team)), h('td', {}, t.waiting),
      h('td', {}, t.breached ? tag(`${t.breached} breached`, 'bad') : '0'), h('td', {}, t.accepted))));
    later();
  });
}

async function adminPage() {
  unsubscribe();
  await loadReference();
  const list = (title, items, text) => [h('h2', {}, title), h('ul', {}, items.map((x) => h('li', {}, text(x))))];
  main.replaceChildren(h('h1', {}, 'Reference data'),
    h('p', {}, 'Administrators change hospitals, wards and teams through the API (PUT /api/v1/hospitals|wards|teams/{code}); see ', h('a', { href: '/docs' }, 'the API documentation'), '. Who looked at a patient: GET /api/v1/audit?nhs_number=…'),
    ...list('Hospitals', reference.hospitals, (x) => `${x.code}: ${x.name}`),
    ...list('Wards', reference.wards, (w) => `${w.code}: ${w.name} (${w.hospital}, ${w.beds} beds)`),
    ...list('Teams', reference.teams, (t) => `${t.code}: ${t.name}, respond within ${t.response_sla_minutes} min`));
}

function notFound() {
  unsubscribe();
  main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, 'There is no such page, or it is not yours to see.'));
}

// ---------- routing ----------

async function route() {
  closePanel();
  const path = location.pathname;
  if (!token()) {
    session = null;
    header();
    if (path !== '/') history.replaceState({}, '', '/');
    return signInPage();
  }
  if (!session) {
    const me = await api('GET', '/api/v1/session');
    if (!me.ok) { sessionStorage.removeItem(TOKEN_KEY); return route(); }
    session = me.body;
  }
  await loadReference();
  header();
  const [, page, raw] = path.split('/');
  let code = raw;
  try { code = raw && decodeURIComponent(raw); } catch (_) { return notFound(); }
  if (!page) return go(home(session));
  if (page === 'ward' && code) return wardPage(code);
  if (page === 'team' && code) return teamPage(code);
  if (page === 'hospital' && code) return hospitalPage(code);
  if (page === 'system') return systemPage();
  if (page === 'admin') return adminPage();
  return notFound();
}

document.addEventListener('click', (event) => {
  const link = event.target.closest('a[href^="/"]');
  if (!link || link.getAttribute('href').startsWith('/docs') || event.ctrlKey || event.metaKey) return;
  event.preventDefault();
  go(link.getAttribute('href'));
});
window.addEventListener('popstate', route);
route();
