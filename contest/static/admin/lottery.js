// Lottery tab: create a lottery (its commitment is published at once), draw it once, show the
// published seed, eligible count, list hash and winners, and the public link to check it with.
import { t } from '/static/common/i18n.js';
import { h, fill, toast, toastError, fmtDateTime } from '/static/common/util.js';

const $ = (id) => document.getElementById(id);
let api = null;
let wired = false;

export async function showLottery(a) {
  api = a;
  if (!wired) {
    wired = true;
    $('lot-contest').addEventListener('change', loadLotteries);
    $('lot-form').addEventListener('submit', create);
  }
  const sel = $('lot-contest');
  if (!sel.options.length) {
    try {
      const list = (await api.get('/api/v1/admin/contests')).contests || [];
      fill(sel, list.map((c) => h('option', { value: c.contest_id }, `${c.title} (${c.contest_id})`)));
    } catch (err) { toastError(err); return; }
  }
  await loadLotteries();
}

const cid = () => encodeURIComponent($('lot-contest').value);

async function create(e) {
  e.preventDefault();
  const f = e.target.elements;
  const num = (v) => (v === '' ? undefined : Number(v));
  const body = {
    name: f['lot-name'].value.trim(),
    winners: num(f['lot-winners'].value),
    eligibility: {
      min_score: f['lot-min'].value === '' ? 0 : Number(f['lot-min'].value),
      board: f['lot-board'].value,
      date_from: f['lot-from'].value || undefined,
      date_to: f['lot-to'].value || undefined,
      exclude_flagged: f['lot-exclude'].checked,
      org_id: f['lot-org'].value.trim() || undefined,
    },
  };
  try {
    const r = await api.post(`/api/v1/admin/contests/${cid()}/lotteries`, body);
    toast(t('lot.created', { id: r.lottery_id }), 'ok', 5000);
    await loadLotteries();
  } catch (err) { toastError(err); }
}

async function draw(lid) {
  try {
    await api.post(`/api/v1/admin/contests/${cid()}/lotteries/${encodeURIComponent(lid)}/draw`, {});
    toast(t('lot.drawn'), 'ok');
  } catch (err) { toastError(err); }
  await loadLotteries();
}

async function loadLotteries() {
  if (!api || !$('lot-contest').value) return;
  let r;
  try { r = await api.get(`/api/v1/admin/contests/${cid()}/lotteries`); } catch (err) { toastError(err); return; }
  const list = r.lotteries || [];
  if (!list.length) { fill($('lot-list'), h('p.muted', t('dash.empty'))); return; }
  fill($('lot-list'), list.map((l) => h('div.card.lottery', { testid: 'lottery', dataset: { lotteryId: l.lottery_id } },
    h('h3', `${l.name} · ${t('lot.winnersN', { n: l.winners_count })}`),
    h('p.small', `${t('lot.commitment')}：`, h('code', { testid: 'lot-commitment' }, l.commitment)),
    l.status !== 'drawn'
      ? h('button.btn', { type: 'button', testid: 'lot-draw', onclick: () => draw(l.lottery_id) }, t('lot.draw'))
      : [
        h('p.small', `${t('lot.seed')}：`, h('code', { testid: 'lot-seed' }, l.seed)),
        h('p.small', { testid: 'lot-eligible' }, t('lot.eligible', { n: l.eligible_count, hash: l.eligible_hash }),
          ` · ${fmtDateTime(l.drawn_at)}`),
        h('ol', { testid: 'lot-winners' }, (l.winners || []).map((w) => h('li', `${w.name}（${w.org_name || w.org_id || ''}）`))),
        h('p.small.muted', t('lot.verify', { cid: l.contest_id, lid: l.lottery_id }), ' ',
          h('a', { href: `/api/v1/contests/${encodeURIComponent(l.contest_id)}/lotteries/${encodeURIComponent(l.lottery_id)}`, target: '_blank', rel: 'noopener' }, t('lot.public'))),
      ])));
}
