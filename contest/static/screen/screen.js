// Big screen: contest title, big stat numbers, top 20 and org ranking, driven by the SSE feed.
import { createApi } from '/static/common/api.js';
import { t, getLang, applyI18n, onLangChange, mountLangToggle } from '/static/common/i18n.js';
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
  else document.documentElement.requestFullscreen?.().catch(() => {});
});
setInterval(() => {
  const d = new Date();
  $('s-clock').textContent = d.toLocaleTimeString('zh-CN', { hour12: false });
}, 1000);

function renderTop(entries) {
  const key = JSON.stringify(entries.map((e) => [e.user_id, e.rank, e.score, e.duration_ms]));
  if (key === lastTopKey) return;
  const prev = new Set(lastTop.map((e) => String(e.user_id)));
  const hadPrev = lastTopKey !== '';
  lastTopKey = key;
  lastTop = entries;
  if (!entries.length) { fill($('top-body'), h('tr', h('td.empty', { colspan: 5 }, t('dash.empty')))); return; }
  fill($('top-body'), entries.slice(0, TOP_N).map((e) => h('tr' + (hadPrev && !prev.has(String(e.user_id)) ? '.flash' : ''), {
    testid: 'leaderboard-row', dataset: { userId: e.user_id, rank: e.rank },
  },
  h('td.num', String(e.rank ?? '')),
  h('td', e.name || ''),
  h('td.col-org', e.org_name || ''),
  h('td.num', fmtNum(e.score, 1)),
  h('td.num.col-dur', fmtDuration(e.duration_ms)))));
}

function renderOrgs(entries) {
  lastOrgs = entries;
  if (!entries.length) { fill($('org-body'), h('tr', h('td.empty', { colspan: 4 }, t('dash.empty')))); return; }
  fill($('org-body'), entries.slice(0, 20).map((o, i) => h('tr', { testid: 'org-row', dataset: { orgId: o.org_id, rank: o.rank ?? i + 1 } },
    h('td.num', String(o.rank ?? i + 1)),
    h('td', o.name || o.org_id),
    h('td.num', fmtNum(o.participants)),
    h('td.num', fmtPct(o.participation_rate)))));
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
