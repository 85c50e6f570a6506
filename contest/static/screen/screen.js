// Big screen: contest title, big stat numbers, top 20 and org ranking, driven by the SSE feed.
import { createApi } from '/static/common/api.js';
import { t, getLang, applyI18n, onLangChange, mountLangToggle } from '/static/common/i18n.js';
import '/static/common/i18n_campaign.js';
import { h, fill, fmtNum, fmtPct, fmtDuration, liveFeed, every } from '/static/common/util.js';

const $ = (id) => document.getElementById(id);
const TOP_N = 20;
const api = createApi();
const params = new URLSearchParams(location.search);

function contestFromPath() {
  const m = /\/screen\/([^/?#]+)/.exec(location.pathname);
  if (m && m[1] !== 'index.html') return decodeURIComponent(m[1]);
  return params.get('contest') || sessionStorage.getItem('quiz.staffContest') || 'demo';
}
const cid = contestFromPath();
const cpath = `/api/v1/contests/${encodeURIComponent(cid)}`;
const orgLevel = Number(params.get('level') || 2);

let lastTop = [];
let lastTopKey = '';
let lastOrgs = [];
let feedOrgs = null;
// The feed ranks the top orgs (the children of a single root): use it when that is the level shown.
const feedFits = () => Array.isArray(feedOrgs) && feedOrgs.length > 0 && feedOrgs.every((o) => o.level === orgLevel);

mountLangToggle($('lang-slot'));
applyI18n(document);
onLangChange(() => { applyI18n(document); lastTopKey = ''; renderTop(lastTop); renderOrgs(lastOrgs); });

$('fs-btn').addEventListener('click', () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else if (document.documentElement.requestFullscreen) document.documentElement.requestFullscreen().catch(() => {});
});
setInterval(() => {
  const d = new Date();
  $('s-clock').textContent = d.toLocaleTimeString('zh-CN', { hour12: false });
}, 1000);

// Where each member's row or podium card was, so a re-render can glide it from there (FLIP).
function positions() {
  const out = new Map();
  for (const el of document.querySelectorAll('[data-testid=leaderboard-row]')) {
    out.set(el.dataset.userId, el.getBoundingClientRect().top);
  }
  return out;
}

function glide(before, prevRank) {
  for (const el of document.querySelectorAll('[data-testid=leaderboard-row]')) {
    const was = before.get(el.dataset.userId);
    if (was === undefined || !el.animate) continue;
    const delta = was - el.getBoundingClientRect().top;
    if (Math.abs(delta) > 1) {
      el.animate([{ transform: `translateY(${delta}px)` }, { transform: 'none' }], { duration: 700, easing: 'ease-out' });
    }
    const old = prevRank.get(el.dataset.userId);
    if (old !== undefined && Number(el.dataset.rank) !== old) el.classList.add('moved');
  }
}

function moveMark(e, prevRank) {
  const old = prevRank.get(String(e.user_id));
  if (old === undefined || old === Number(e.rank)) return null;
  return old > Number(e.rank) ? h('span.move.up', { testid: 'rank-up' }, '▲') : h('span.move.down', { testid: 'rank-down' }, '▼');
}

function renderTop(entries) {
  const key = JSON.stringify(entries.map((e) => [e.user_id, e.rank, e.score, e.duration_ms]));
  if (key === lastTopKey) return;
  const prev = new Set(lastTop.map((e) => String(e.user_id)));
  const prevRank = new Map(lastTop.map((e) => [String(e.user_id), Number(e.rank)]));
  const hadPrev = lastTopKey !== '';
  const before = positions();
  lastTopKey = key;
  lastTop = entries;
  const podium = entries.slice(0, 3);
  fill($('podium'), podium.map((e, i) => h(`div.pod.r${i + 1}` + (hadPrev && !prev.has(String(e.user_id)) ? '.flash' : ''), {
    testid: 'leaderboard-row', dataset: { userId: e.user_id, rank: e.rank },
  },
  h('div.medal', String(e.rank != null ? e.rank : i + 1), moveMark(e, prevRank)),
  h('div.p-name', e.name || ''),
  h('div.p-org', e.org_name || ''),
  h('div.p-score', fmtNum(e.score, 1)))));
  const rest = entries.slice(3, TOP_N);
  if (!entries.length) fill($('top-body'), h('tr', h('td.empty', { colspan: 5 }, t('dash.empty'))));
  else fill($('top-body'), rest.map((e) => h('tr' + (hadPrev && !prev.has(String(e.user_id)) ? '.flash' : ''), {
    testid: 'leaderboard-row', dataset: { userId: e.user_id, rank: e.rank },
  },
  h('td.num', String(e.rank != null ? e.rank : ''), moveMark(e, prevRank)),
  h('td', e.name || ''),
  h('td.col-org', e.org_name || ''),
  h('td.num.score', fmtNum(e.score, 1)),
  h('td.num.col-dur', fmtDuration(e.duration_ms)))));
  fitRows($('top-fit'));
  if (hadPrev) glide(before, prevRank);
}

// Show only the rows that fit whole in their panel (a hall screen never scrolls nor cuts a row).
function fitRows(box) {
  if (!box) return;
  const rows = [...box.querySelectorAll('tbody tr')];
  for (const r of rows) r.hidden = false;
  if (!matchMedia('(min-width: 1000px) and (min-aspect-ratio: 4/3)').matches) return;
  for (let i = rows.length - 1; i > 0 && box.scrollHeight > box.clientHeight + 1; i--) rows[i].hidden = true;
}
window.addEventListener('resize', () => { fitRows($('top-fit')); fitRows($('org-fit')); });

// the QR code opens the H5 page on this contest, at the address this screen was opened with
$('join-qr').src = `${cpath}/join-qr.svg?origin=${encodeURIComponent(location.origin)}`;

function renderOrgs(entries) {
  lastOrgs = entries;
  if (!entries.length) { fill($('org-body'), h('tr', h('td.empty', { colspan: 4 }, t('dash.empty')))); return; }
  const top = Math.max(0.0001, ...entries.slice(0, 20).map((o) => Number(o.participation_rate) || 0));
  fill($('org-body'), entries.slice(0, 20).map((o, i) => h('tr', { testid: 'org-row', dataset: { orgId: o.org_id, rank: (o.rank != null ? o.rank : i + 1) } },
    h('td.num', String(o.rank != null ? o.rank : i + 1)),
    h('td', o.name || o.org_id),
    h('td.num', fmtNum(o.participants)),
    // bars relative to the leader, so a campaign's early hours still show who is ahead
    h('td.col-bar', h('div.bar-cell',
      h('div.bar', h('div', { style: `width:${Math.round(((Number(o.participation_rate) || 0) / top) * 100)}%` })),
      h('span.pct', fmtPct(o.participation_rate)))))));
  fitRows($('org-fit'));
}

function renderStats(s) {
  if (!s) return;
  if (s.participants !== undefined) { $('stat-participants').textContent = fmtNum(s.participants); $('stat-participants').dataset.value = String(s.participants); }
  if (s.attempts_finished !== undefined) $('stat-attempts').textContent = fmtNum(s.attempts_finished);
  if (s.answers !== undefined) $('stat-answers').textContent = fmtNum(s.answers);
  if (s.answers_per_s !== undefined) $('stat-aps').textContent = fmtNum(s.answers_per_s, 1);
}

const feed = liveFeed(cid, (snap) => {
  if (Array.isArray(snap.top)) renderTop(snap.top);
  renderStats(snap.stats);
  if (Array.isArray(snap.orgs)) feedOrgs = snap.orgs;
  if (feedFits()) renderOrgs(feedOrgs);
}, {
  onState: (on) => {
    if (missing) return;
    const dot = $('live-dot');
    dot.className = 'live-dot ' + (on ? 'on' : 'off');
    dot.textContent = on ? t('common.live') : t('common.offline');
  },
});

let missing = false;
const stops = [];
// kept here rather than in common/i18n.js: only this page says it
const MISSING = {
  zh: { title: '竞赛不存在', hint: '找不到编号为「{cid}」的竞赛，请检查大屏地址。' },
  en: { title: 'Contest not found', hint: 'There is no contest "{cid}". Check the address of this screen.' },
};

// An unknown contest (a mistyped screen URL) would otherwise show "reconnecting" forever: the feed
// answers 404 and is retried every few seconds. Say so, stop the feed and the polls, and check now
// and then whether the contest has appeared (created after the screen was put up).
function showMissing() {
  if (missing) return;
  missing = true;
  feed.close();
  for (const stop of stops) stop();
  const dot = $('live-dot');
  dot.className = 'live-dot';
  dot.textContent = '';
  document.querySelector('.s-stats').style.display = 'none';
  const render = () => {
    const text = MISSING[getLang()] || MISSING.zh;
    $('s-title').textContent = text.title;
    document.title = text.title;
    fill(note, h('h2', text.title), h('p', text.hint.replace('{cid}', cid)));
  };
  // the tables stay in the DOM (hidden): the language toggle's re-render still finds them
  const main = document.querySelector('main.s-main');
  for (const panel of main.querySelectorAll('.s-panel')) panel.style.display = 'none';
  const note = h('section.s-panel.s-missing', { testid: 'contest-missing', role: 'alert' });
  main.prepend(note);
  render();
  onLangChange(() => { if (missing) render(); });
  const recheck = setInterval(async () => {
    try {
      await api.get(cpath, undefined, { retries: 0 });
      clearInterval(recheck);
      location.reload();
    } catch (_) { /* still missing, or offline */ }
  }, 30000);
}

async function loadTitle() {
  try {
    const c = await api.get(cpath);
    $('s-title').textContent = c.title || cid;
    document.title = c.title || cid;
  } catch (err) {
    if (err && err.status === 404) showMissing();
    else $('s-title').textContent = cid;
  }
}

// fallbacks while the feed is not delivering
stops.push(every(3000, async () => {
  if (feed.isFresh()) return;
  const r = await api.get(cpath + '/leaderboard', { board: 'total', limit: TOP_N });
  renderTop(r.entries || []);
}));
stops.push(every(5000, async () => {
  if (feedFits() && feed.isFresh()) return;
  let r = await api.get(cpath + '/orgs', { level: orgLevel, sort: 'participation_rate', limit: 20 });
  if (!(r.entries || []).length && orgLevel !== 1) {
    r = await api.get(cpath + '/orgs', { level: 1, sort: 'participation_rate', limit: 20 });
  }
  renderOrgs(r.entries || []);
}));

loadTitle();
