// Organizer dashboard: live top list (SSE + polling), org rankings with drill-down, stats,
// per-question accuracy, per-minute charts, exports.
import { saveStaffContest } from '/static/common/api.js';
import { t, onLangChange } from '/static/common/i18n.js';
import { startStaffPage } from '/static/common/staff.js';
import {
  h, fill, toast, toastError, fmtNum, fmtPct, fmtDuration, liveFeed, every,
} from '/static/common/util.js';

const $ = (id) => document.getElementById(id);
const TOP_N = 20;
const LEVEL_MAX = 5;

let api = null;
let me = null;
let cid = null;
let lastTopAt = 0;             // when the board was last read (the feed triggers reads, at most 1/s)
let crumbs = [];               // [{org_id|null, name}]
let orgSort = 'participation_rate';
let feed = null;
let stops = [];
let charts = null;
let lastTop = null;
let lastTopKey = '';
let lastStatsAt = 0;

let wholeTree = null;          // the single root org, when there is one: its scope is the whole contest
const scopeOrg = () => (crumbs.length ? crumbs[crumbs.length - 1].org_id : null);
// The live feed carries the whole contest; it serves the top list only when that is the scope.
const scopeIsWhole = () => scopeOrg() === null || scopeOrg() === wholeTree;
const cpath = () => `/api/v1/contests/${encodeURIComponent(cid)}`;
const apath = () => `/api/v1/admin/contests/${encodeURIComponent(cid)}`;

startStaffPage({
  onReady: (a, m, initialContest) => { api = a; me = m; init(initialContest); },
  onLogout: () => stopAll(),
});

function stopAll() {
  for (const s of stops) s();
  stops = [];
  if (feed) { feed.close(); feed = null; }
}

async function init(initialContest) {
  const sel = $('contest-select');
  let contests = [];
  try {
    const roots = (await api.get('/api/v1/orgs', null, { auth: false })).orgs || [];
    if (roots.length === 1) wholeTree = String(roots[0].org_id);
  } catch (_) { /* polling covers it */ }
  try {
    if (me.role === 'admin') contests = (await api.get('/api/v1/admin/contests')).contests || [];
  } catch (_) { /* fall back to the public list */ }
  if (!contests.length) {
    try { contests = (await api.get('/api/v1/contests')).contests || []; } catch (err) { toastError(err); }
  }
  fill(sel, contests.map((c) => h('option', { value: c.contest_id }, `${c.title} (${c.contest_id})`)));
  const stored = initialContest || sessionStorage.getItem('quiz.staffContest');
  if (stored && !contests.some((c) => c.contest_id === stored)) {
    sel.prepend(h('option', { value: stored }, stored));
  }
  if (!contests.length && !stored) {
    fill($('top-body'), h('tr', h('td.empty', { colspan: 5 }, t('dash.noContests'))));
    return;
  }
  sel.value = stored || contests[0].contest_id;
  sel.onchange = () => selectContest(sel.value);
  selectContest(sel.value);
}

function rootCrumb() {
  if (me && me.role === 'organizer' && me.org_id) return [{ org_id: me.org_id, name: me.org_name || me.org_id }];
  return [];
}

function selectContest(id) {
  stopAll();
  cid = id;
  saveStaffContest(id);
  $('screen-link').href = `/screen/${encodeURIComponent(id)}`;
  crumbs = rootCrumb();
  lastTop = null;
  lastTopKey = '';
  renderCrumbs();
  feed = liveFeed(cid, onSnapshot, {
    onState: (on) => {
      const dot = $('live-dot');
      dot.className = 'live-dot ' + (on ? 'on' : 'off');
      dot.textContent = on ? t('common.live') : t('common.offline');
    },
  });
  stops.push(every(2000, refreshTop));
  stops.push(every(3000, refreshStats));
  stops.push(every(3000, refreshOrgs));
  stops.push(every(5000, refreshTimeline));
}

// ------------------------------------------------------------------ live snapshot
function onSnapshot(snap) {
  if (scopeIsWhole()) {
    // The feed is public, so its names are masked; the dashboard reads the board with its token
    // instead, so names look the same at every level (full within the organizer's scope).
    if (Array.isArray(snap.top) && Date.now() - lastTopAt > 1000) refreshTop().catch(() => {});
    // the stats endpoint is fresher about registrants/accuracy; the feed about the counters
    if (snap.stats && Date.now() - lastStatsAt > 1000) renderStats(snap.stats, true);
  }
}

async function refreshTop() {
  lastTopAt = Date.now();
  const r = await api.get(cpath() + '/leaderboard', { board: 'total', limit: TOP_N, org_id: scopeOrg() || undefined });
  renderTop(r.entries || []);
}

function renderTop(entries) {
  const key = JSON.stringify(entries.map((e) => [e.user_id, e.rank, e.score, e.duration_ms]));
  if (key === lastTopKey) return;
  const prev = new Set((lastTop || []).map((e) => String(e.user_id)));
  lastTopKey = key;
  lastTop = entries;
  const body = $('top-body');
  if (!entries.length) { fill(body, h('tr', h('td.empty', { colspan: 5 }, t('dash.empty')))); return; }
  fill(body, entries.map((e) => h('tr' + (lastTop && prev.size && !prev.has(String(e.user_id)) ? '.flash' : ''), {
    testid: 'leaderboard-row', dataset: { userId: e.user_id, rank: e.rank },
  },
  h('td.num', String(e.rank != null ? e.rank : '')),
  h('td', e.name || ''),
  h('td', e.org_name || e.org_id || ''),
  h('td.num', fmtNum(e.score, 1)),
  h('td.num', fmtDuration(e.duration_ms)))));
}

// ------------------------------------------------------------------ stats
async function refreshStats() {
  const s = await api.get(apath() + '/stats', { org_id: scopeOrg() || undefined });
  lastStatsAt = Date.now();
  renderStats(s, false);
  renderQuestions(s.questions || []);
}

function renderStats(s, fromFeed) {
  const set = (id, v) => { if (v !== undefined && v !== null) $(id).textContent = v; };
  set('stat-participants', s.participants !== undefined ? fmtNum(s.participants) : undefined);
  set('stat-attempts', s.attempts_finished !== undefined ? fmtNum(s.attempts_finished) : undefined);
  set('stat-answers', s.answers !== undefined ? fmtNum(s.answers) : undefined);
  set('stat-aps', s.answers_per_s !== undefined ? fmtNum(s.answers_per_s, 1) : undefined);
  if (!fromFeed) {
    set('stat-registrants', s.registrants !== undefined ? fmtNum(s.registrants) : undefined);
    set('stat-accuracy', s.accuracy !== undefined ? fmtPct(s.accuracy) : undefined);
  }
  // raw values for tests and tooling
  if (s.participants !== undefined) $('stat-participants').dataset.value = String(s.participants);
}

function renderQuestions(qs) {
  const body = $('q-body');
  if (!qs.length) { fill(body, h('tr', h('td.empty', { colspan: 3 }, t('dash.empty')))); return; }
  const sorted = [...qs].sort((a, b) => (a.accuracy != null ? a.accuracy : 0) - (b.accuracy != null ? b.accuracy : 0));
  fill(body, sorted.map((q) => h('tr', { testid: 'question-row', dataset: { questionId: q.question_id } },
    h('td', String(q.question_id)),
    h('td.num', fmtNum(q.answers)),
    h('td', h('div.acc-bar',
      h('div.bar', h('div' + ((q.accuracy != null ? q.accuracy : 0) < 0.5 ? '.low' : ''), { style: `width:${Math.round((q.accuracy || 0) * 100)}%` })),
      h('span', fmtPct(q.accuracy)))))));
}

// ------------------------------------------------------------------ orgs
function renderCrumbs() {
  const nav = $('breadcrumb');
  const items = [];
  const root = rootCrumb();
  if (!root.length) {
    items.push({ org_id: null, name: t('dash.allOrgs') });
  }
  items.push(...crumbs);
  fill(nav, items.map((c, i) => [
    i ? h('span.sep', { 'aria-hidden': 'true' }, '›') : null,
    h('button', {
      type: 'button', testid: 'crumb', 'aria-current': i === items.length - 1 ? 'page' : null,
      onclick: () => {
        if (i === items.length - 1) return;
        const keep = root.length ? i + 1 : i;
        crumbs = crumbs.slice(0, Math.max(keep, root.length));
        changedScope();
      },
    }, c.name),
  ]));
}

function changedScope() {
  renderCrumbs();
  lastTopKey = '';
  refreshOrgs().catch(() => {});
  refreshTop().catch(() => {});
  refreshStats().catch(() => {});
  refreshTimeline().catch(() => {});
}

async function refreshOrgs() {
  const parent = scopeOrg();
  const q = { sort: orgSort, limit: 200 };
  if (parent) q.parent_id = parent; else q.level = 1;
  const r = await api.get(cpath() + '/orgs', q);
  renderOrgs(r.entries || []);
}

function renderOrgs(entries) {
  const body = $('org-body');
  for (const th of document.querySelectorAll('#org-head th.sortable')) {
    th.setAttribute('aria-sort', th.dataset.sort === orgSort ? 'descending' : 'none');
  }
  if (!entries.length) { fill(body, h('tr', h('td.empty', { colspan: 7 }, t('dash.empty')))); return; }
  fill(body, entries.map((o) => {
    const canDrill = (o.level != null ? o.level : LEVEL_MAX) < LEVEL_MAX;
    const drill = () => {
      if (!canDrill) return;
      crumbs = [...crumbs, { org_id: o.org_id, name: o.name }];
      changedScope();
    };
    return h('tr' + (canDrill ? '.clickable' : ''), {
      testid: 'org-row', dataset: { orgId: o.org_id, level: o.level },
      tabindex: canDrill ? 0 : null, onclick: drill,
      onkeydown: (e) => { if (e.key === 'Enter') drill(); },
    },
    h('td.num', String(o.rank != null ? o.rank : '')),
    h('td', o.name || o.org_id),
    h('td.num', fmtNum(o.members)),
    h('td.num', fmtNum(o.participants)),
    h('td.num', fmtPct(o.participation_rate)),
    h('td.num', fmtNum(o.avg_score, 1)),
    h('td.num', fmtNum(o.total_score, 1)));
  }));
}

for (const th of document.querySelectorAll('#org-head th.sortable')) {
  const go = () => { orgSort = th.dataset.sort; if (cid) refreshOrgs().catch(toastError); };
  th.addEventListener('click', go);
  th.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); go(); } });
}

// ------------------------------------------------------------------ charts
const MINUTE = 60000;
const CHART_MIN_SPAN = 30;          // minutes shown at least, so a fresh contest is not one dot
const CHART_MAX_FILL = 3 * 24 * 60; // zero-fill gaps up to three days of minutes

function ensureCharts() {
  if (charts || typeof window.echarts === 'undefined') return charts;
  const base = () => ({
    grid: { left: 48, right: 48, top: 28, bottom: 32 },
    tooltip: { trigger: 'axis' },
    legend: { top: 0, right: 0, textStyle: { fontSize: 11 } },
    xAxis: {
      type: 'time', minInterval: MINUTE, splitNumber: timeTicks(),
      axisLabel: { hideOverlap: true, formatter: '{HH}:{mm}' },
    },
    animation: false,
  });
  const answers = window.echarts.init($('chart-answers'), null, { renderer: 'canvas' });
  answers.setOption({
    ...base(),
    yAxis: [{ type: 'value', minInterval: 1 }],
    series: [{ id: 'answers', type: 'bar', barMaxWidth: 12, itemStyle: { color: '#07c160' }, data: [] }],
  });
  const finished = window.echarts.init($('chart-finished'), null, { renderer: 'canvas' });
  finished.setOption({
    ...base(),
    yAxis: [{ type: 'value', minInterval: 1 }, { type: 'value', minInterval: 1, splitLine: { show: false } }],
    series: [
      { id: 'per-minute', type: 'bar', barMaxWidth: 12, itemStyle: { color: '#1677ff' }, data: [] },
      { id: 'total', type: 'line', yAxisIndex: 1, showSymbol: false, step: 'end', itemStyle: { color: '#fa8c16' }, data: [] },
    ],
  });
  charts = { answers, finished };
  window.addEventListener('resize', () => {
    for (const c of [answers, finished]) {
      c.setOption({ xAxis: { splitNumber: timeTicks() } });
      c.resize();
    }
  });
  return charts;
}

/** About one time label per 110 px of chart, so labels never run into each other on a phone. */
function timeTicks() {
  const w = $('chart-answers').clientWidth || 600;
  return Math.max(2, Math.min(8, Math.floor(w / 110)));
}

/** Per-minute points as a continuous series: missing minutes are zeros, up to the current minute. */
function densify(points) {
  const byMinute = new Map(points.map((p) => [Math.floor(p.at / MINUTE), p]));
  const now = Math.floor(Date.now() / MINUTE);
  const first = points.length ? Math.floor(points[0].at / MINUTE) : now;
  const last = Math.max(now, points.length ? Math.floor(points[points.length - 1].at / MINUTE) : now);
  const from = Math.min(first, last - CHART_MIN_SPAN);
  if (last - from > CHART_MAX_FILL) return points;
  const out = [];
  for (let m = from; m <= last; m++) {
    out.push(byMinute.get(m) || { at: m * MINUTE, answers: 0, attempts_finished: 0 });
  }
  return out;
}

async function refreshTimeline() {
  const r = await api.get(apath() + '/timeline', { org_id: scopeOrg() || undefined });
  const c = ensureCharts();
  if (!c) return;
  const pts = densify(r.points || []);
  let total = 0;
  c.answers.setOption({ series: [{ id: 'answers', name: t('dash.answers'), data: pts.map((p) => [p.at, p.answers]) }] });
  c.finished.setOption({
    series: [
      { id: 'per-minute', name: t('dash.perMinute'), data: pts.map((p) => [p.at, p.attempts_finished]) },
      { id: 'total', name: t('dash.cumulative'), data: pts.map((p) => [p.at, (total += p.attempts_finished)]) },
    ],
  });
}

// ------------------------------------------------------------------ exports
for (const btn of document.querySelectorAll('.export-row button')) {
  btn.addEventListener('click', async () => {
    if (!cid) return;
    const { what, format } = btn.dataset;
    btn.disabled = true;
    try {
      const name = await api.download(apath() + '/export', { what, format, org_id: scopeOrg() || undefined },
        `${cid}-${what}.${format}`);
      toast(t('dash.exported', { name }), 'ok');
    } catch (err) {
      toastError(err);
    } finally {
      btn.disabled = false;
    }
  });
}

onLangChange(() => {
  if (!cid) return;
  renderCrumbs();
  lastTopKey = '';
  if (lastTop) renderTop(lastTop);
});
