// What a campaign participant gets after a run (issue 15): 错题回顾 (the review of a finished
// attempt, wrong answers first, with explanations) and the certificate to save and share.
import { addMessages, t } from '/static/common/i18n.js';
import { h, fill, errorText, fmtNum } from '/static/common/util.js';

addMessages({
  zh: {
    'h5c.recap': '错题回顾',
    'h5c.recapTitle': '错题回顾',
    'h5c.recapSummary': '共 {n} 题，答错或未答 {w} 题',
    'h5c.allRight': '全部答对，没有错题！',
    'h5c.yourChoice': '你的答案：{c}',
    'h5c.noChoice': '你的答案：未作答',
    'h5c.rightChoice': '正确答案：{c}',
    'h5c.explanation': '解析',
    'h5c.right': '答对',
    'h5c.wrong': '答错',
    'h5c.reviewClosed': '本竞赛结束后才能查看答案解析',
    'h5c.certificate': '领取证书',
    'h5c.certLoading': '证书生成中…',
    'h5c.certHint': '长按图片保存到手机，或发送给朋友',
    'h5c.certSerial': '证书编号 {s}',
    'h5c.certVerify': '验证证书',
    'h5c.challenge': '挑战赛',
    'h5c.challengeProgress': '第 {i} 题 · 最多 {n} 题',
    'h5c.challengeOver': '挑战结束',
    'h5c.challengeHint': '答错一题即结束，答对越多得分越高',
  },
  en: {
    'h5c.recap': 'Review my answers',
    'h5c.recapTitle': 'Review',
    'h5c.recapSummary': '{n} questions, {w} wrong or unanswered',
    'h5c.allRight': 'All right, nothing to review!',
    'h5c.yourChoice': 'Your answer: {c}',
    'h5c.noChoice': 'Your answer: none',
    'h5c.rightChoice': 'Correct answer: {c}',
    'h5c.explanation': 'Explanation',
    'h5c.right': 'Right',
    'h5c.wrong': 'Wrong',
    'h5c.reviewClosed': 'Answers are shown after the contest ends',
    'h5c.certificate': 'Get my certificate',
    'h5c.certLoading': 'Making the certificate…',
    'h5c.certHint': 'Long-press the image to save or share it',
    'h5c.certSerial': 'Serial {s}',
    'h5c.certVerify': 'Verify',
    'h5c.challenge': 'Challenge',
    'h5c.challengeProgress': 'Question {i} · at most {n}',
    'h5c.challengeOver': 'Challenge over',
    'h5c.challengeHint': 'One wrong answer ends the run; every right one scores',
  },
});

const aidPath = (aid) => `/api/v1/attempts/${encodeURIComponent(aid)}`;
const keysText = (c) => (Array.isArray(c) ? c.join('') : String(c != null ? c : ''));

/** The review screen of a finished attempt: wrong and unanswered questions first. */
export async function showRecap(api, app, aid) {
  fill(app, h('p.empty.spinner', t('common.loading')));
  let r;
  try {
    r = await api.get(aidPath(aid) + '/review');
  } catch (err) {
    fill(app, h('div.card.empty', { testid: 'recap-closed' },
      err.code === 'review_closed' ? t('h5c.reviewClosed') : errorText(err)));
    return;
  }
  const items = r.items.map((it) => {
    const chosen = new Set(Array.isArray(it.choice) ? it.choice : it.choice ? [it.choice] : []);
    const right = new Set(Array.isArray(it.correct_choice) ? it.correct_choice : [it.correct_choice]);
    return h('div.card.recap-item' + (it.correct ? '.ok' : '.bad'), {
      testid: 'recap-item', dataset: { index: it.index, correct: it.correct ? '1' : '0' },
    },
    h('div.q-head', h('span.badge' + (it.correct ? '.running' : '.ended'), it.correct ? t('h5c.right') : t('h5c.wrong')),
      h('span.muted.small', `${fmtNum(it.points_awarded, 0)} / ${it.points}`)),
    h('div.q-stem', it.stem),
    h('div.options', it.options.map((o) => h('div.option' + (right.has(o.key) ? '.correct' : chosen.has(o.key) ? '.wrong' : ''),
      h('span.key', o.key), h('span.text', o.text)))),
    h('p', { testid: 'recap-choice' }, it.choice ? t('h5c.yourChoice', { c: keysText(it.choice) }) : t('h5c.noChoice')),
    h('p.ok-text', t('h5c.rightChoice', { c: keysText(it.correct_choice) })),
    it.explanation ? h('div.feedback.info', { testid: 'recap-explanation' }, h('b', t('h5c.explanation') + '：'), it.explanation) : null);
  });
  fill(app,
    h('div.card', { testid: 'recap' }, h('h1', t('h5c.recapTitle')),
      h('p', r.wrong_count ? t('h5c.recapSummary', { n: r.question_count, w: r.wrong_count }) : t('h5c.allRight'))),
    ...items);
  window.scrollTo(0, 0);
}

function blobToDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

/**
 * The result page's campaign actions: the review link and, when the contest gives one and the
 * score reaches it, the certificate as an <img> (a data: URL, so WeChat's long-press saves it).
 */
export function resultExtras(api, { cid, fin, onRecap }) {
  const box = h('div', { testid: 'result-extras' });
  if (!fin || !fin.attempt_id) return box;
  const recapBtn = h('button.btn.secondary.block', { type: 'button', testid: 'recap-link', onclick: () => onRecap(fin.attempt_id) },
    t('h5c.recap'));
  box.append(h('div.q-actions', recapBtn));
  api.get(`/api/v1/contests/${encodeURIComponent(cid)}`).then((c) => {
    const cert = c && c.certificate;
    if (!cert || fin.score === null || fin.score === undefined || fin.score < cert.min_score) return;
    const card = h('div.card', { testid: 'certificate' });
    const btn = h('button.btn.block', { type: 'button', testid: 'certificate-get' }, t('h5c.certificate'));
    btn.onclick = async () => {
      btn.disabled = true;
      fill(card, h('p.empty.spinner', t('h5c.certLoading')));
      try {
        const resp = await api.request('GET', aidPath(fin.attempt_id) + '/certificate.png', { raw: true, retries: 2 });
        const serial = resp.headers.get('X-Certificate-Serial') || '';
        const src = await blobToDataUrl(await resp.blob());
        fill(card,
          h('img', { src, alt: cert.title || t('h5c.certificate'), testid: 'certificate-img', style: 'width:100%;display:block' }),
          h('p.muted.small', { style: 'text-align:center' }, t('h5c.certHint')),
          serial ? h('p.small', { style: 'text-align:center' }, t('h5c.certSerial', { s: serial }), ' ',
            h('a', { href: `/verify/${encodeURIComponent(serial)}`, testid: 'certificate-verify' }, t('h5c.certVerify'))) : null);
      } catch (err) {
        fill(card, h('p.empty', errorText(err)), btn);
        btn.disabled = false;
      }
    };
    fill(card, btn);
    box.prepend(card);
  }).catch(() => {});
  return box;
}
