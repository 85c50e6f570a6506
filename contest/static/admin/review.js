// Review queue: flagged attempts with their evidence, void / restore / clear with a required
// reason, and the audit log.  A void moves every board at once (the server's REVIEW script).
import { t } from '/static/common/i18n.js';
import { h, fill, toast, toastError, fmtDateTime, fmtDuration, fmtNum } from '/static/common/util.js';

const $ = (id) => document.getElementById(id);
let api = null;
let wired = false;
// Decisions reach the durable list through the flusher (well under a second): until the list
// shows them, the page keeps what it was told by the review call.
const recent = new Map();

export async function showReview(a) {
  api = a;
  if (!wired) {
    wired = true;
    $('rv-contest').addEventListener('change', loadReview);
    $('rv-status').addEventListener('change', loadReview);
    $('rv-refresh').onclick = loadReview;
  }
  const sel = $('rv-contest');
  if (!sel.options.length) {
    try {
      const list = (await api.get('/api/v1/admin/contests')).contests || [];
      fill(sel, list.map((c) => h('option', { value: c.contest_id }, `${c.title} (${c.contest_id})`)));
    } catch (err) { toastError(err); return; }
  }
  await loadReview();
}

const cid = () => encodeURIComponent($('rv-contest').value);

export async function loadReview() {
  if (!api || !$('rv-contest').value) return;
  let r;
  try {
    r = await api.get(`/api/v1/admin/contests/${cid()}/flagged`, { status: $('rv-status').value });
  } catch (err) { toastError(err); return; }
  const status = $('rv-status').value;
  const now = Date.now();
  const entries = [];
  for (const e of r.entries || []) {
    const mine = recent.get(e.attempt_id);
    if (mine && now - mine.at < 15000 && (!e.review || e.review.at < mine.at)) {
      e.review = mine;
      e.voided = mine.action === 'void';
      if (status === 'pending') continue;
    }
    entries.push(e);
  }
  $('rv-total').textContent = t('rv.total', { n: (r.total != null ? r.total : entries.length) });
  if (!entries.length) fill($('rv-body'), h('tr', h('td.empty', { colspan: 9 }, t('rv.none'))));
  else fill($('rv-body'), entries.map((e) => row(e, r.min_answer_ms)));
  loadAudit();
}

function decisionText(e) {
  if (!e.review) return t('rv.pending');
  return `${t('rv.action.' + e.review.action)}：${e.review.reason || ''}`;
}

function row(e, minMs) {
  const act = (action) => h('button.btn.link', {
    type: 'button', testid: `rv-${action}`, onclick: () => decide(e.attempt_id, action),
  }, t('rv.' + action));
  const actions = e.voided ? [act('restore')] : [act('void'), act('clear')];
  return h('tr', { testid: 'rv-row', dataset: { attemptId: e.attempt_id, userId: e.user_id } },
    h('td', h('button.btn.link', { type: 'button', testid: 'rv-evidence-open', onclick: () => evidence(e, minMs) },
      e.name || e.user_id), h('div.muted.small', e.attempt_id)),
    h('td.num', String(e.score != null ? e.score : '—')),
    h('td.num', fmtDuration(e.duration_ms)),
    h('td.num', String(e.flagged_answers)),
    h('td.num', e.answers_per_s === null || e.answers_per_s === undefined ? '—' : fmtNum(e.answers_per_s, 2)),
    h('td.num', String(e.ip_count != null ? e.ip_count : 0)),
    h('td.num', String(e.device_count != null ? e.device_count : 0)),
    h('td', { testid: 'rv-decision' }, e.voided ? h('span.badge.ended', t('rv.voided')) : null, ' ', decisionText(e)),
    h('td.actions-cell', actions));
}

async function decide(aid, action) {
  const reasonInput = $('rv-reason');
  const reason = reasonInput.value.trim();
  if (!reason) { toast(t('rv.reasonRequired'), 'error'); reasonInput.focus(); return; }
  try {
    await api.post(`/api/v1/admin/contests/${cid()}/attempts/${encodeURIComponent(aid)}/review`, { action, reason });
    recent.set(aid, { action, reason, by: '', at: Date.now() });
    toast(t('rv.done', { action: t('rv.action.' + action), aid }), 'ok');
  } catch (err) { toastError(err); return; }
  await loadReview();
  setTimeout(loadAudit, 1000);  // the audit log is the durable record: read it once flushed
}

async function evidence(e, minMs) {
  const box = $('rv-evidence');
  try {
    const ev = await api.get(`/api/v1/admin/contests/${cid()}/attempts/${encodeURIComponent(e.attempt_id)}/evidence`);
    fill(box, h('h3', `${t('rv.evidence')}：${e.name || e.user_id}`),
      h('p.muted.small', t('rv.minimum', { ms: (ev.min_answer_ms != null ? ev.min_answer_ms : minMs) }), ' · ',
        `${t('rv.perSecond')} ${(ev.answers_per_s != null ? ev.answers_per_s : '—')} · ${t('rv.ips')} ${ev.ip_count} · ${t('rv.devices')} ${ev.device_count}`),
      h('ol.evidence', (ev.answers || []).map((a) => h('li' + (a.elapsed_ms < ev.min_answer_ms ? '.check-bad' : ''),
        { testid: 'rv-answer-time' },
        `${t('rv.answerNo', { i: a.index + 1 })} · ${t('rv.elapsed', { ms: a.elapsed_ms })}`,
        a.elapsed_ms < ev.min_answer_ms ? ` · ${t('rv.fast')}` : ''))));
  } catch (err) { fill(box, h('p.error-text', String(err.message || err))); }
}

async function loadAudit() {
  try {
    const r = await api.get(`/api/v1/admin/contests/${cid()}/reviews`);
    const rows = (r.entries || []).slice().reverse();
    fill($('rv-audit'), rows.length ? rows.map((x) => h('tr', { testid: 'rv-audit-row' },
      h('td.small', fmtDateTime(x.at)), h('td.small', x.attempt_id), h('td', t('rv.action.' + x.action)),
      h('td', x.reason || ''), h('td', x.by || ''))) : h('tr', h('td.empty', { colspan: 5 }, t('dash.empty'))));
  } catch (err) { toastError(err); }
}
