// Admin pages: imports, question bank browser, contest editor (draw rules checked against the
// bank as you type), publish, paper preview.
import { t, onLangChange } from '/static/common/i18n.js';
import '/static/common/i18n_campaign.js';
import { showReview } from '/static/admin/review.js';
import { openEditor, deleteQuestion } from '/static/admin/editor.js';
import { showLottery } from '/static/admin/lottery.js';
import { startStaffPage } from '/static/common/staff.js';
import {
  h, fill, toast, toastError, errorText, fmtDateTime, statusText, debounce,
} from '/static/common/util.js';

const $ = (id) => document.getElementById(id);
const PAGE = 20;
let api = null;
let summary = { total: 0, cells: [] };
const bank = { offset: 0, total: 0 };

startStaffPage({ onReady: (a) => { api = a; init(); } });

function init() {
  for (const b of document.querySelectorAll('#tabs button')) b.onclick = () => showTab(b.dataset.tab);
  showTab(location.hash.slice(1) || 'import');
  loadSummary();
}

function showTab(name) {
  const tabs = ['import', 'bank', 'contests', 'review', 'lottery'];
  if (!tabs.includes(name)) name = 'import';
  for (const b of document.querySelectorAll('#tabs button')) b.setAttribute('aria-selected', b.dataset.tab === name ? 'true' : 'false');
  for (const id of tabs) $('tab-' + id).hidden = id !== name;
  history.replaceState(null, '', '#' + name);
  if (name === 'bank') loadBank();
  if (name === 'contests') loadContests();
  if (name === 'review') showReview(api);
  if (name === 'lottery') showLottery(api);
}

// import templates (Chinese headers, two example rows), fetched with the token and saved
for (const btn of document.querySelectorAll('[data-template]')) {
  btn.addEventListener('click', async () => {
    try {
      await api.download(`/api/v1/admin/templates/${btn.dataset.template}`, null, btn.dataset.template);
    } catch (err) { toastError(err); }
  });
}

// ------------------------------------------------------------------ imports
function errorTable(rows) {
  return h('div.table-wrap', h('table', { testid: 'import-errors' },
    h('thead', h('tr', h('th.num', t('admin.row')), h('th', t('admin.column')), h('th', t('admin.message')))),
    h('tbody', rows.map((r) => h('tr', h('td.num', String(r.row != null ? r.row : '')), h('td', String(r.column_label || r.column || '')), h('td', String(r.message != null ? r.message : '')))))));
}

for (const form of document.querySelectorAll('.import-form')) {
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const input = form.querySelector('input[type=file]');
    const out = form.querySelector('.import-result');
    if (!input.files.length) { input.focus(); return; }
    const fd = new FormData();
    fd.append('file', input.files[0], input.files[0].name);
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    fill(out, h('p.spinner', t('common.loading')));
    try {
      const r = await api.request('POST', form.dataset.endpoint, { form: fd, retries: 1 });
      fill(out, h('p.ok-text', { testid: 'import-ok' }, t('admin.imported', { imported: (r.imported != null ? r.imported : 0), updated: (r.updated != null ? r.updated : 0) })),
        r.errors && r.errors.length ? errorTable(r.errors) : null);
      loadSummary();
    } catch (err) {
      const rows = (err.details && err.details.errors) || [];
      fill(out, h('p.error-text', rows.length ? t('admin.importFailed', { n: rows.length }) : errorText(err)),
        rows.length ? errorTable(rows) : null);
    } finally {
      btn.disabled = false;
    }
  });
}

// ------------------------------------------------------------------ bank
async function loadSummary() {
  try {
    summary = await api.get('/api/v1/admin/questions/summary');
  } catch (_) { summary = { total: 0, cells: [] }; }
  const cats = categories();
  const sel = $('bank-cat');
  const cur = sel.value;
  fill(sel, h('option', { value: '' }, `${t('admin.category')}: ${t('admin.any')}`), ...cats.map((c) => h('option', { value: c }, c)));
  sel.value = cur;
}
function categories() {
  return [...new Set((summary.cells || []).map((c) => c.category).filter((c) => c !== null && c !== undefined))].sort();
}

$('new-question').onclick = () => openEditor(api, $('question-editor-box'), null, () => { loadBank(); loadSummary(); });
$('bank-filter').addEventListener('submit', (e) => { e.preventDefault(); bank.offset = 0; loadBank(); });
$('bank-q').addEventListener('input', debounce(() => { bank.offset = 0; loadBank(); }, 300));
$('bank-cat').addEventListener('change', () => { bank.offset = 0; loadBank(); });
$('bank-type').addEventListener('change', () => { bank.offset = 0; loadBank(); });
$('bank-prev').onclick = () => { bank.offset = Math.max(0, bank.offset - PAGE); loadBank(); };
$('bank-next').onclick = () => { if (bank.offset + PAGE < bank.total) { bank.offset += PAGE; loadBank(); } };

async function loadBank() {
  if (!api) return;
  try {
    const r = await api.get('/api/v1/admin/questions', {
      q: $('bank-q').value.trim(), category: $('bank-cat').value, type: $('bank-type').value, offset: bank.offset, limit: PAGE,
    });
    bank.total = r.total || 0;
    $('bank-total').textContent = t('admin.bankTotal', { n: bank.total });
    const pages = Math.max(1, Math.ceil(bank.total / PAGE));
    $('bank-page').textContent = t('admin.page', { p: Math.floor(bank.offset / PAGE) + 1, n: pages });
    $('bank-prev').disabled = bank.offset === 0;
    $('bank-next').disabled = bank.offset + PAGE >= bank.total;
    const qs = r.questions || [];
    if (!qs.length) { fill($('bank-body'), h('tr', h('td.empty', { colspan: 8 }, t('dash.empty')))); return; }
    const reload = () => { loadBank(); loadSummary(); };
    fill($('bank-body'), qs.map((q) => h('tr', { testid: 'bank-row', dataset: { qid: q.id } },
      h('td', String(q.id), q.retired ? h('span.badge.ended', { testid: 'retired' }, t('ed.retiredBadge')) : null),
      h('td', t('qtype.' + q.type)),
      h('td.stem-cell', q.stem, h('ol', { type: 'A' }, (q.options || []).map((o) => h('li', typeof o === 'string' ? o : o.text)))),
      h('td', Array.isArray(q.answer) ? q.answer.join('') : String(q.answer != null ? q.answer : '')),
      h('td', (q.category != null ? q.category : '')),
      h('td.num', String(q.difficulty != null ? q.difficulty : '')),
      h('td.num', String(q.points != null ? q.points : '')),
      h('td.actions-cell',
        h('button.btn.link', { type: 'button', testid: 'qe-edit', onclick: () => openEditor(api, $('question-editor-box'), q, reload) }, t('ed.edit')),
        q.retired ? null : h('button.btn.link', { type: 'button', testid: 'qe-delete', onclick: () => deleteQuestion(api, q, reload) }, t('ed.delete'))))));
  } catch (err) { toastError(err); }
}

// ------------------------------------------------------------------ contests
let contests = [];
async function loadContests() {
  try {
    contests = (await api.get('/api/v1/admin/contests')).contests || [];
  } catch (err) { toastError(err); contests = []; }
  const body = $('contest-body');
  if (!contests.length) { fill(body, h('tr', h('td.empty', { colspan: 5 }, t('dash.empty')))); return; }
  fill(body, contests.map((c) => h('tr', { testid: 'admin-contest-row', dataset: { contestId: c.contest_id } },
    h('td', c.contest_id),
    h('td', c.title),
    h('td', h('span.badge.' + (c.status || 'x'), statusText(c.status))),
    h('td.small.when', `${fmtDateTime(c.starts_at)} — ${fmtDateTime(c.ends_at)}`),
    h('td.actions-cell',
      h('button.btn.link', { type: 'button', testid: 'edit', onclick: () => editContest(c.contest_id) }, t('admin.edit')),
      c.status === 'draft' ? h('button.btn.link', { type: 'button', testid: 'publish', onclick: () => publish(c.contest_id) }, t('admin.publish')) : null,
      h('button.btn.link', { type: 'button', testid: 'preview', onclick: () => preview(c.contest_id) }, t('admin.preview')),
      h('a.btn.link', { href: `/dashboard/?contest=${encodeURIComponent(c.contest_id)}` }, t('dash.title')),
      h('a.btn.link', { href: `/screen/${encodeURIComponent(c.contest_id)}`, target: '_blank', rel: 'noopener' }, t('dash.screen'))))));
}

async function publish(cid) {
  try {
    await api.post(`/api/v1/admin/contests/${encodeURIComponent(cid)}/publish`, {});
    toast(t('admin.published'), 'ok');
    loadContests();
  } catch (err) { toastError(err); }
}

async function preview(cid) {
  const box = $('preview');
  box.hidden = false;
  fill(box, h('p.spinner', t('common.loading')));
  try {
    const r = await api.post(`/api/v1/admin/contests/${encodeURIComponent(cid)}/preview`, {});
    fill(box, h('h2', `${t('admin.previewTitle')} — ${cid}`),
      (r.questions || []).map((q) => h('div.preview-q', { testid: 'preview-question' },
        h('div', h('b', `${q.index + 1}. `), h('span.badge', t('qtype.' + q.type)), ' ', q.stem, h('span.muted.small', ` (${(q.points != null ? q.points : '')})`)),
        h('ol', { type: 'A' }, (q.options || []).map((o) => h('li', `${o.text}`))),
        h('div.ans', `${t('admin.answer')}: ${Array.isArray(q.answer) ? q.answer.join('') : q.answer}`),
        q.explanation ? h('div.muted.small', q.explanation) : null)));
    box.scrollIntoView({ block: 'start' });
  } catch (err) { fill(box, h('p.error-text', errorText(err))); }
}

$('new-contest').onclick = () => openForm(null);

async function editContest(cid) {
  try {
    const c = await api.get(`/api/v1/admin/contests/${encodeURIComponent(cid)}`);
    openForm(c);
  } catch (err) { toastError(err); }
}

const pad = (n) => String(n).padStart(2, '0');
function toLocalInput(ms) {
  if (!ms) return '';
  const d = new Date(Number(ms));
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
function fromLocalInput(v) { return v ? new Date(v).getTime() : null; }

function availableFor(rule) {
  let n = 0;
  for (const c of summary.cells || []) {
    if (rule.category && c.category !== rule.category) continue;
    if (rule.difficulty && Number(c.difficulty) !== Number(rule.difficulty)) continue;
    n += c.count || 0;
  }
  return n;
}

function openForm(existing) {
  const form = $('contest-form');
  form.hidden = false;
  const now = Date.now();
  const c = existing || {
    title: '', description: '', starts_at: now, ends_at: now + 7 * 86400000, timezone: 'Asia/Shanghai',
    time_limit_s: 300, question_time_limit_s: 0, attempts_per_day: 3, attempts_total: 0, ranking: 'best',
    feedback: 'immediate', paper: { draw: [{ category: null, difficulty: null, count: 10 }], shuffle_questions: true, shuffle_options: true },
    scoring: { partial_credit: false, time_bonus: false },
  };
  const paper = c.paper || { draw: [] };
  const scoring = c.scoring || {};
  const rules = (paper.draw || []).map((r) => ({ category: (r.category != null ? r.category : null), difficulty: (r.difficulty != null ? r.difficulty : null), count: (r.count != null ? r.count : 1) }));
  const timeBonusIsNumber = typeof scoring.time_bonus === 'number';

  const field = (name, input) => h('div', h('label', { for: 'cf-' + name }, t('admin.f.' + name)), input);
  const text = (name, value, attrs = {}) => h('input', { id: 'cf-' + name, name, type: 'text', value: (value != null ? value : ''), ...attrs });
  const num = (name, value) => h('input', { id: 'cf-' + name, name, type: 'number', min: 0, step: 1, value: (value != null ? value : 0) });
  const sel = (name, value, opts) => {
    const s = h('select', { id: 'cf-' + name, name }, opts.map(([v, l]) => h('option', { value: v }, l)));
    s.value = value;
    return s;
  };
  const check = (name, value) => h('label.inline', h('input', { type: 'checkbox', name, checked: !!value }), t('admin.f.' + name));

  const drawBody = h('tbody');
  const checkOut = h('div', { 'aria-live': 'polite', testid: 'draw-check' });
  const cats = categories();

  function renderRules() {
    fill(drawBody, rules.map((r, i) => {
      const catSel = h('select', { 'aria-label': t('admin.category') },
        h('option', { value: '' }, t('admin.any')), cats.map((x) => h('option', { value: x }, x)));
      catSel.value = r.category != null ? r.category : '';
      if (r.category && !cats.includes(r.category)) catSel.append(h('option', { value: r.category }, r.category)), catSel.value = r.category;
      catSel.onchange = () => { r.category = catSel.value || null; changed(); };
      const diffSel = h('select', { 'aria-label': t('admin.difficulty') },
        h('option', { value: '' }, t('admin.any')), [1, 2, 3, 4, 5].map((d) => h('option', { value: d }, String(d))));
      diffSel.value = r.difficulty != null ? r.difficulty : '';
      diffSel.onchange = () => { r.difficulty = diffSel.value ? Number(diffSel.value) : null; changed(); };
      const cnt = h('input', { type: 'number', min: 1, step: 1, value: r.count, 'aria-label': t('admin.count') });
      cnt.oninput = () => { r.count = Number(cnt.value) || 0; changedSoft(); };
      const avail = availableFor(r);
      return h('tr', { testid: 'draw-row' },
        h('td', catSel), h('td', diffSel), h('td', cnt),
        h('td.num' + (avail < r.count ? '.check-bad' : ''), String(avail)),
        h('td', h('button.btn.link', { type: 'button', onclick: () => { rules.splice(i, 1); changed(); } }, t('admin.remove'))));
    }));
  }
  const runCheck = debounce(async () => {
    const draw = rules.map((r) => ({ category: r.category, difficulty: r.difficulty, count: r.count }));
    const total = draw.reduce((a, r) => a + (r.count || 0), 0);
    try {
      const r = await api.post('/api/v1/admin/paper/check', { draw });
      fill(checkOut, r.ok
        ? h('p.check-ok', t('admin.drawOk', { n: total }))
        : h('ul.check-bad', (r.errors || []).map((e) => h('li', String(e)))));
    } catch (err) {
      fill(checkOut, h('p.check-bad', errorText(err)));
    }
  }, 300);
  function changed() { renderRules(); runCheck(); }
  function changedSoft() {
    // keep focus in the count input: only refresh the availability cells
    const rows = drawBody.querySelectorAll('tr');
    rules.forEach((r, i) => {
      const cell = rows[i] && rows[i].children[3];
      if (cell) { const a = availableFor(r); cell.textContent = String(a); cell.className = 'num' + (a < r.count ? ' check-bad' : ''); }
    });
    runCheck();
  }

  const submitBtn = h('button.btn', { type: 'submit', testid: 'contest-save' }, existing ? t('admin.update') : t('admin.create'));
  fill(form,
    h('h2', existing ? `${t('admin.edit')}: ${existing.contest_id}` : t('admin.newContest')),
    h('div.form-grid',
      field('contest_id', text('contest_id', c.contest_id, { pattern: '[A-Za-z0-9_-]+', disabled: !!existing })),
      field('title', text('title', c.title, { required: true })),
      field('timezone', text('timezone', c.timezone || 'Asia/Shanghai')),
      field('starts_at', h('input', { id: 'cf-starts_at', name: 'starts_at', type: 'datetime-local', value: toLocalInput(c.starts_at) })),
      field('ends_at', h('input', { id: 'cf-ends_at', name: 'ends_at', type: 'datetime-local', value: toLocalInput(c.ends_at) })),
      field('time_limit_s', num('time_limit_s', c.time_limit_s)),
      field('question_time_limit_s', num('question_time_limit_s', c.question_time_limit_s)),
      field('attempts_per_day', num('attempts_per_day', c.attempts_per_day)),
      field('attempts_total', num('attempts_total', c.attempts_total)),
      field('ranking', sel('ranking', c.ranking || 'best', [['best', t('ranking.best')], ['sum', t('ranking.sum')]])),
      field('feedback', sel('feedback', c.feedback || 'immediate',
        [['immediate', t('feedback.immediate')], ['end', t('feedback.end')], ['none', t('feedback.none')]]))),
    field('description', h('textarea', { id: 'cf-description', name: 'description' }, c.description || '')),
    h('div', { style: 'margin:.6rem 0' },
      check('shuffle_questions', paper.shuffle_questions), check('shuffle_options', paper.shuffle_options),
      check('partial_credit', scoring.partial_credit),
      timeBonusIsNumber ? h('span', h('label.inline', { for: 'cf-time_bonus' }, t('admin.f.time_bonus')), num('time_bonus', scoring.time_bonus))
        : check('time_bonus', scoring.time_bonus)),
    h('h3', t('admin.draw')),
    h('p.muted.small', t('admin.drawHint'), summary.total ? ` (${t('admin.bankTotal', { n: summary.total })})` : ` (${t('admin.noBank')})`),
    h('div.table-wrap', h('table.draw-table',
      h('thead', h('tr', h('th', t('admin.category')), h('th', t('admin.difficulty')), h('th', t('admin.count')), h('th.num', t('admin.available')), h('th'))),
      drawBody)),
    h('p', h('button.btn.secondary.small', { type: 'button', onclick: () => { rules.push({ category: null, difficulty: null, count: 1 }); changed(); } }, t('admin.addRule'))),
    checkOut,
    h('div.row', submitBtn, h('button.btn.secondary', { type: 'button', onclick: () => { form.hidden = true; } }, t('common.cancel'))));
  changed();

  form.onsubmit = async (e) => {
    e.preventDefault();
    const v = (n) => form.elements[n];
    const body = {
      title: v('title').value.trim(),
      description: v('description').value,
      starts_at: fromLocalInput(v('starts_at').value),
      ends_at: fromLocalInput(v('ends_at').value),
      timezone: v('timezone').value.trim() || 'Asia/Shanghai',
      time_limit_s: Number(v('time_limit_s').value) || 0,
      question_time_limit_s: Number(v('question_time_limit_s').value) || 0,
      attempts_per_day: Number(v('attempts_per_day').value) || 0,
      attempts_total: Number(v('attempts_total').value) || 0,
      ranking: v('ranking').value,
      feedback: v('feedback').value,
      paper: {
        draw: rules.map((r) => ({ category: r.category, difficulty: r.difficulty, count: r.count })),
        shuffle_questions: v('shuffle_questions').checked,
        shuffle_options: v('shuffle_options').checked,
      },
      scoring: {
        partial_credit: v('partial_credit').checked,
        time_bonus: timeBonusIsNumber ? Number(v('time_bonus').value) || 0 : v('time_bonus').checked,
      },
    };
    if (!body.title) { toast(`${t('err.validation_failed')}：${t('admin.f.title')}`, 'error'); v('title').focus(); return; }
    submitBtn.disabled = true;
    for (const el of form.querySelectorAll('[aria-invalid]')) { el.removeAttribute('aria-invalid'); el.title = ''; }
    try {
      if (existing) {
        await api.patch(`/api/v1/admin/contests/${encodeURIComponent(existing.contest_id)}`, body);
        toast(t('admin.saved'), 'ok');
      } else {
        const id = v('contest_id').value.trim();
        if (id) body.contest_id = id;
        const r = await api.post('/api/v1/admin/contests', body);
        toast(t('admin.created', { id: r.contest_id }), 'ok');
      }
      form.hidden = true;
      loadContests();
    } catch (err) {
      toastError(err);
      // mark every field the server named (a date range marks both ends), its message as the tooltip
      const fields = (err.details && err.details.fields) || {};
      for (const [name, message] of Object.entries(fields)) {
        const el = form.querySelector('#cf-' + CSS.escape(name));
        if (el) { el.setAttribute('aria-invalid', 'true'); el.title = String(message); }
      }
    } finally {
      submitBtn.disabled = false;
    }
  };
  form.scrollIntoView({ block: 'start' });
}

onLangChange(() => { if (!api) return; loadSummary(); if (!$('tab-bank').hidden) loadBank(); if (!$('tab-contests').hidden) loadContests(); });
