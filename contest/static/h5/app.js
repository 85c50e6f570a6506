// Participant H5 app: register / ticket -> contest list -> detail -> questions -> result.
import {
  createApi, loadParticipantAuth, saveParticipantAuth, clearParticipantAuth, serverNow,
} from '/static/common/api.js';
import { t, applyI18n, onLangChange, mountLangToggle } from '/static/common/i18n.js';
import {
  h, fill, toast, toastError, errorText, fmtDateTime, fmtCountdown, fmtDuration, fmtNum,
  statusText,
} from '/static/common/util.js';
import { orgPicker } from '/static/h5/orgpicker.js';
import { showRecap, resultExtras } from '/static/h5/campaign.js';
import { codeField, normalizePhone, rememberPhone, rememberedPhone } from '/static/common/signin.js';
import { signinCard } from '/static/h5/signin.js';
import {
  finishBackoffMs, isTransient, pendingPosition, sendWithRetry,
} from '/static/common/retry.js';

const app = document.getElementById('app');
const backBtn = document.getElementById('back-btn');
const ATTEMPT_KEY = 'quiz.attempt';
/** Wait before a retry: `ms`, or less when the browser says the network is back. */
function retryPause(ms) {
  return new Promise((resolve) => {
    const done = () => { clearTimeout(timer); window.removeEventListener('online', done); resolve(); };
    const timer = setTimeout(done, ms);
    window.addEventListener('online', done);
  });
}

let auth = loadParticipantAuth();
let me = null;
let rerender = () => {};          // redraw the current screen (language switch)
let stopTimers = () => {};        // clear the running screen's timers

const api = createApi({
  getToken: () => auth && auth.token,
  onUnauthorized: () => {
    auth = null; me = null;
    clearParticipantAuth();
  },
});

// ---------------------------------------------------------------- helpers
function setBack(fn) {
  backBtn.hidden = !fn;
  backBtn.onclick = fn || null;
}
function screen(render, { back = null } = {}) {
  stopTimers();
  stopTimers = () => {};
  setBack(back);
  rerender = render;
  render();
  window.scrollTo(0, 0);
}
function loadStoredAttempt() {
  try { return JSON.parse(localStorage.getItem(ATTEMPT_KEY) || 'null'); } catch (_) { return null; }
}
function storeAttempt(rec) {
  if (rec) localStorage.setItem(ATTEMPT_KEY, JSON.stringify(rec));
  else localStorage.removeItem(ATTEMPT_KEY);
}
function cidPath(cid) { return `/api/v1/contests/${encodeURIComponent(cid)}`; }
function aidPath(aid) { return `/api/v1/attempts/${encodeURIComponent(aid)}`; }
function needsLogin(err) { return err && err.status === 401; }
function limitText(n, unitKey) {
  return !n ? t('h5.unlimited') : t(unitKey, { n });
}
function typeText(type) { return t('qtype.' + type) === 'qtype.' + type ? type : t('qtype.' + type); }
function choiceKeys(c) {
  if (Array.isArray(c)) return c.map(String);
  return String(c != null ? c : '').replace(/[^A-Za-z]/g, '').split('');
}

// ---------------------------------------------------------------- boot
async function boot() {
  mountLangToggle(document.getElementById('lang-slot'));
  applyI18n(document);
  onLangChange(() => { applyI18n(document); rerender(); });

  const url = new URL(location.href);
  const ticket = url.searchParams.get('ticket');
  if (ticket) {
    url.searchParams.delete('ticket');
    history.replaceState(null, '', url.pathname + url.search + url.hash);
    try {
      const r = await api.post('/api/v1/auth/ticket', { ticket }, { auth: false });
      auth = { user_id: r.user_id, token: r.token, expires_at: r.expires_at };
      saveParticipantAuth(auth);
      storeAttempt(null);
    } catch (err) {
      toast(t('h5.ticketFailed') + '：' + errorText(err), 'error', 5000);
    }
  }
  if (!auth) { showRegister(); return; }
  await afterLogin();
}

async function afterLogin() {
  try {
    me = await api.get('/api/v1/me');
  } catch (err) {
    if (needsLogin(err)) { showRegister(); return; }
    me = { user_id: auth.user_id };
  }
  keepFresh();
  const rec = loadStoredAttempt();
  if (rec && rec.attempt_id) {
    if (await resumeAttempt(rec)) return;
  }
  // the big screen's QR code opens /?contest=<id>: straight to that contest
  const wanted = new URL(location.href).searchParams.get('contest');
  if (wanted) { showDetail(wanted); return; }
  showList();
}

// ---------------------------------------------------------------- token refresh, SMS sign-in
// A token is refreshed quietly once less than half of its life is left (a campaign lasts weeks;
// members come back daily); one that expired anyway leads to SMS sign-in, not to registration.
const REFRESH_EVERY_MS = 30 * 60 * 1000;
let refreshTimer = null;
async function refreshIfDue() {
  if (!auth || !auth.token || !auth.expires_at) return;
  const issued = auth.issued_at || 0;
  const half = issued ? (auth.expires_at - issued) / 2 : 3.5 * 86400 * 1000;
  if (auth.expires_at - Date.now() > half) return;
  try {
    const r = await api.post('/api/v1/auth/refresh', undefined, { retries: 1 });
    auth = { user_id: auth.user_id, token: r.token, expires_at: r.expires_at, issued_at: Date.now() };
    saveParticipantAuth(auth);
  } catch (_) { /* next time; an expired token shows the SMS sign-in on the next request */ }
}
function keepFresh() {
  refreshIfDue();
  if (!refreshTimer) refreshTimer = setInterval(refreshIfDue, REFRESH_EVERY_MS);
}

function showSignin(phone = '') {
  screen(() => {
    fill(app, signinCard({
      api, phone,
      onSignedIn: async (r) => {
        auth = { user_id: r.user_id, token: r.token, expires_at: r.expires_at, issued_at: Date.now() };
        saveParticipantAuth(auth);
        // an attempt left open when the token expired is resumed (another user's answers 404: dropped)
        await afterLogin();
      },
      onRegister: (p) => showRegister({ register: true, phone: p }),
    }));
  });
}

// ---------------------------------------------------------------- register
function showRegister(opts = {}) {
  // someone who signed in on this browser before goes back through SMS sign-in, phone filled in
  if (!opts.register && rememberedPhone()) { showSignin(rememberedPhone()); return; }
  const form = { name: '', phone: opts.phone || '', org: { path: [], q: '' }, needsCode: false };
  screen(() => {
    const nameIn = h('input#reg-name', {
      type: 'text', testid: 'register-name', autocomplete: 'name', maxlength: 32, required: true,
      placeholder: t('h5.namePh'), value: form.name,
      oninput: (e) => { form.name = e.target.value; },
    });
    const phoneIn = h('input#reg-phone', {
      type: 'tel', testid: 'register-phone', autocomplete: 'tel', inputmode: 'numeric', maxlength: 20,
      required: true, placeholder: t('h5.phonePh'), value: form.phone,
      oninput: (e) => { form.phone = e.target.value; },
    });
    const picker = orgPicker(api, form.org);
    const submit = h('button.btn.block', { type: 'submit', testid: 'register-submit' }, t('h5.register'));
    // real-name campaigns (QUIZ_REGISTER_REQUIRES_SMS=1) ask for a code: shown once the server says so
    const code = form.needsCode ? codeField({ api, getPhone: () => form.phone, purpose: 'register', prefix: 'register' })
      : null;

    const f = h('form.card', { novalidate: true },
      h('h1', t('h5.registerTitle')),
      h('p.muted.small', t('h5.registerHint')),
      h('label', { for: 'reg-name' }, t('h5.name')), nameIn,
      h('label', { for: 'reg-phone' }, t('h5.phone')), phoneIn,
      h('h2.org-title#org-picker-label', t('h5.org')), picker,
      code ? [h('label', t('sms.code')), code.row] : null,
      h('div', { style: 'margin-top:1rem' }, submit),
      h('div', { style: 'margin-top:.6rem;text-align:center' }, h('button.btn.link', {
        type: 'button', testid: 'sms-login-link', onclick: () => showSignin(form.phone),
      }, t('sms.toSignin'))),
    );
    f.addEventListener('submit', async (e) => {
      e.preventDefault();
      const name = form.name.trim();
      const phone = normalizePhone(form.phone);
      const org = form.org.path[form.org.path.length - 1];
      if (!name) { toast(t('h5.needName'), 'error'); nameIn.focus(); return; }
      if (!phone) { toast(t('sms.needPhone'), 'error'); phoneIn.focus(); return; }
      if (!org) { toast(t('h5.needOrg'), 'error'); picker.querySelector('input, select').focus(); return; }
      if (org.has_children && !org.accepts_members) { toast(t('sms.needLeaf'), 'error'); return; }
      if (org.has_children && !window.confirm(t('org.confirmUpper', { name: org.name }))) return;
      if (code && !/^\d{6}$/.test(code.value())) { toast(t('sms.needCode'), 'error'); code.focus(); return; }
      submit.disabled = true;
      try {
        const body = { name, phone, org_id: org.org_id, ...(code ? { code: code.value() } : {}) };
        const r = await api.post('/api/v1/auth/register', body, { auth: false, retries: 2 });
        auth = { user_id: r.user_id, token: r.token, expires_at: r.expires_at, issued_at: Date.now() };
        saveParticipantAuth(auth);
        rememberPhone(phone);
        storeAttempt(null);
        toast(t('h5.registered'), 'ok');
        await afterLogin();
      } catch (err) {
        if (!form.needsCode && err.details && err.details.fields && err.details.fields.code) {
          form.needsCode = true;
          rerender();
          toast(t('sms.needRegisterCode'), 'info', 4500);
          return;
        }
        toastError(err);
      } finally {
        submit.disabled = false;
      }
    });
    fill(app, f);
  });
}

// ---------------------------------------------------------------- contest list
async function showList() {
  let contests = null;
  let failed = null;
  screen(() => {
    const list = h('div', { testid: 'contest-list' });
    if (failed) list.append(h('div.card.empty', errorText(failed), h('div', h('button.btn.secondary.small', { type: 'button', onclick: () => showList() }, t('common.retry')))));
    else if (!contests) list.append(h('p.empty.spinner', t('common.loading')));
    else if (!contests.length) list.append(h('div.card.empty', t('h5.noContests')));
    else {
      for (const c of contests) {
        list.append(h('button.contest-item', {
          type: 'button', testid: 'contest-item', dataset: { contestId: c.contest_id },
          onclick: () => showDetail(c.contest_id),
        },
        h('div.row', h('span.ci-title.grow', c.title), h('span.badge.' + (c.status || 'x'), statusText(c.status))),
        h('div.ci-meta', `${fmtDateTime(c.starts_at)} — ${fmtDateTime(c.ends_at)}`)));
      }
    }
    fill(app,
      h('div.row', { style: 'margin:.2rem 0 .8rem' },
        h('h1.grow', { style: 'margin:0' }, t('h5.contests')),
        me && me.name ? h('span.muted.small', `${me.name}${me.org_name ? ' · ' + me.org_name : ''}`) : null),
      list);
  });
  try {
    const r = await api.get('/api/v1/contests');
    contests = r.contests || [];
  } catch (err) {
    if (needsLogin(err)) { showRegister(); return; }
    failed = err;
  }
  if (rerender && app.isConnected) rerender();
}

// ---------------------------------------------------------------- contest detail
async function showDetail(cid) {
  let c = null;
  let mine = null;
  let failed = null;
  const render = () => {
    if (failed) { fill(app, h('div.card.empty', errorText(failed))); return; }
    if (!c) { fill(app, h('p.empty.spinner', t('common.loading'))); return; }
    const startBtn = h('button.btn.block', { type: 'button', testid: 'start', onclick: () => startAttempt(cid, startBtn) }, t('h5.start'));
    const rules = [
      [t('h5.window'), `${fmtDateTime(c.starts_at)} — ${fmtDateTime(c.ends_at)}`],
      [t('h5.qCount'), t('h5.nQuestions', { n: (c.questions_per_attempt != null ? c.questions_per_attempt : '—') })],
      [t('h5.timeLimit'), c.time_limit_s ? fmtDuration(c.time_limit_s * 1000) : t('h5.unlimited')],
      [t('h5.qTimeLimit'), c.question_time_limit_s ? fmtDuration(c.question_time_limit_s * 1000) : t('h5.unlimited')],
      [t('h5.perDay'), limitText(c.attempts_per_day, 'h5.nTimes')],
      [t('h5.total'), limitText(c.attempts_total, 'h5.nTimes')],
      [t('h5.ranking'), t('ranking.' + (c.ranking || 'best'))],
      [t('h5.feedback'), t('feedback.' + (c.feedback || 'none'))],
    ];
    fill(app,
      h('div.card',
        h('h1', c.title),
        c.description ? h('p', { style: 'white-space:pre-wrap' }, c.description) : null,
        h('h2', { style: 'margin-top:1rem' }, t('h5.rules')),
        h('ul.rules', rules.map(([k, v]) => h('li', h('span.muted', k), h('span', v)))),
        mine && mine.rank ? h('p.ok-text', t('h5.myBest', { score: mine.score, rank: mine.rank })) : null,
        attemptsLeft(c),
        h('div.q-actions', startBtn,
          h('button.btn.secondary.block', { type: 'button', onclick: () => showBoards(cid, null) }, t('h5.viewBoard')))));
  };
  screen(render, { back: () => showList() });
  try {
    c = await api.get(cidPath(cid));
    c.contest_id = c.contest_id || cid;
  } catch (err) {
    if (needsLogin(err)) { showRegister(); return; }
    failed = err;
  }
  render();
  if (c) {
    try { mine = await api.get(cidPath(cid) + '/leaderboard/me', { board: 'total', around: 0 }); render(); } catch (_) { /* optional */ }
  }
}

/** What a signed-in participant has left (fields only present with a token; null means unlimited). */
function attemptsLeft(c) {
  if (!('attempts_left_today' in c)) return null;
  const lines = [];
  if (c.attempts_left_total === 0) lines.push(t('h5.noAttemptsLeft'));
  else if (c.attempts_left_today === 0) {
    lines.push(t('h5.noAttemptsLeft'));
    if (c.next_attempt_at) lines.push(t('h5.nextAttempt'));
  } else {
    if (c.attempts_left_today !== null) lines.push(t('h5.leftToday', { n: c.attempts_left_today }));
    if (c.attempts_left_total !== null && c.attempts_left_total !== c.attempts_left_today) {
      lines.push(t('h5.leftTotal', { n: c.attempts_left_total }));
    }
  }
  if (c.best_score !== null && c.best_score !== undefined) lines.push(t('h5.bestScore', { s: fmtNum(c.best_score, 1) }));
  if (!lines.length) return null;
  return h('div.attempts-left', { testid: 'attempts-left' }, lines.map((x) => h('p', x)));
}

async function startAttempt(cid, btn) {
  if (btn) btn.disabled = true;
  try {
    const a = await api.post(cidPath(cid) + '/attempts', {});
    let attempt = a;
    if (a.__status === 200 || a.answered === undefined) {
      // an existing unfinished attempt: fetch what was answered already
      try { attempt = await api.get(aidPath(a.attempt_id)); } catch (_) { attempt = { ...a, answered: [] }; }
    }
    storeAttempt({ attempt_id: attempt.attempt_id, contest_id: cid });
    let contest = null;
    try { contest = await api.get(cidPath(cid)); } catch (_) { contest = {}; }
    runQuiz(attempt, contest, cid);
  } catch (err) {
    if (needsLogin(err)) { showRegister(); return; }
    toastError(err);
  } finally {
    if (btn) btn.disabled = false;
  }
}

async function resumeAttempt(rec) {
  try {
    const a = await api.get(aidPath(rec.attempt_id));
    if (a.finished || (a.deadline_at && serverNow() > a.deadline_at)) {
      storeAttempt(null);
      if (a.finished) return false;
      // the deadline passed while away: the service finishes it; show the result
      await finishAttempt({ attempt: a, cid: rec.contest_id || a.contest_id });
      return true;
    }
    let contest = {};
    try { contest = await api.get(cidPath(rec.contest_id || a.contest_id)); } catch (_) { /* optional */ }
    toast(t('h5.resumed'), 'info');
    runQuiz(a, contest, rec.contest_id || a.contest_id, rec.pending);
    return true;
  } catch (err) {
    if (err.status === 404 || err.status === 401 || err.status === 403) storeAttempt(null);
    return false;
  }
}

// ---------------------------------------------------------------- the quiz
function runQuiz(attempt, contest, cid, pending = null) {
  const questions = [...attempt.questions].sort((a, b) => a.index - b.index);
  const st = {
    attempt, contest, cid, questions,
    answered: new Map((attempt.answered || []).map((x) => [x.index, x.choice])),
    results: new Map(),           // index -> answer response
    skipped: new Set(),           // indexes closed by the per-question limit
    pos: 0,
    selection: new Set(),
    phase: 'answering',           // answering | sending | feedback
    retrying: false,
    shownAt: Date.now(),
    finishing: false,
    advanceTimer: null,
  };
  const qLimitMs = (contest.question_time_limit_s || 0) * 1000;
  const challenge = attempt.mode === 'challenge';

  const firstOpen = (from = 0) => {
    for (let i = from; i < questions.length; i++) {
      const ix = questions[i].index;
      if (!st.answered.has(ix) && !st.skipped.has(ix)) return i;
    }
    return -1;
  };
  const remaining = () => questions.filter((q) => !st.answered.has(q.index) && !st.skipped.has(q.index)).length;

  function goto(pos) {
    clearTimeout(st.advanceTimer);
    st.pos = pos;
    st.selection = new Set();
    st.phase = 'answering';
    st.shownAt = Date.now();
    render();
    window.scrollTo(0, 0);
  }
  function advance() {
    let next = firstOpen(st.pos + 1);
    if (next < 0) next = firstOpen(0);
    if (next < 0) { showReview(); return; }
    goto(next);
  }

  async function finishNow(reason) {
    if (st.finishing) return;
    st.finishing = true;
    stopTimers();
    if (reason === 'timeout') toast(t('h5.timeUp'), 'info');
    await finishAttempt({ attempt: st.attempt, cid: st.cid });
    st.finishing = false;
  }

  // timers: the attempt deadline and the per-question limit
  let timerEl = null;
  let qTimerEl = null;
  const tick = () => {
    const left = (st.attempt.deadline_at || Infinity) - serverNow();
    if (timerEl && Number.isFinite(left)) {
      timerEl.textContent = fmtCountdown(left);
      timerEl.classList.toggle('low', left < 30000);
    }
    if (left <= 0) { finishNow('timeout'); return; }
    if (qLimitMs && qTimerEl) {
      const q = questions[st.pos];
      const qLeft = qLimitMs - (Date.now() - st.shownAt);
      qTimerEl.textContent = t('h5.qLeft', { t: fmtCountdown(qLeft) });
      if (qLeft <= 0 && q && !st.answered.has(q.index) && st.phase === 'answering') {
        st.skipped.add(q.index);
        toast(t('h5.qTimeUp'), 'info');
        // a challenge ends at its question's time limit: finish now rather than wait for the deadline
        if (challenge) finishNow(); else advance();
      }
    }
  };
  const interval = setInterval(tick, 250);

  async function submit() {
    const q = questions[st.pos];
    if (!q || st.phase !== 'answering' || !st.selection.size) return;
    const keys = [...st.selection].sort();
    const choice = q.type === 'multiple' ? keys : keys[0];
    st.phase = 'sending';
    storeAttempt({ attempt_id: st.attempt.attempt_id, contest_id: st.cid, pending: { index: q.index, choice } });
    render();
    try {
      const r = await sendAnswer(st, q.index, choice, (on) => { st.retrying = on; render(); });
      st.answered.set(q.index, choice);
      st.results.set(q.index, r);
      storeAttempt({ attempt_id: st.attempt.attempt_id, contest_id: st.cid });
      // a challenge: the reply serves the next question, or ends the run with its result
      if (r.next && !questions.some((x) => x.index === r.next.index)) questions.push(r.next);
      if (r.finished) { challengeOver(r.result, r); return; }
      if (r.correct_choice !== undefined && r.correct_choice !== null) {
        st.phase = 'feedback';
        render();
        if (remaining() > 0) st.advanceTimer = setTimeout(() => { if (questions[st.pos] === q) advance(); }, r.correct ? 1200 : 2200);
      } else if (remaining() > 0) {
        advance();
      } else {
        st.phase = 'feedback';
        render();
      }
    } catch (err) {
      storeAttempt({ attempt_id: st.attempt.attempt_id, contest_id: st.cid });
      st.retrying = false;
      if (err.code === 'already_answered' || err.status === 409) {
        toast(t('h5.alreadyAnswered'), 'info');
        st.answered.set(q.index, choice);
        try {
          const a = await api.get(aidPath(st.attempt.attempt_id));
          for (const x of a.answered || []) st.answered.set(x.index, x.choice);
        } catch (_) { /* keep going */ }
        if (remaining() > 0) advance(); else showReview();
      } else if (err.details && err.details.finished && err.details.result) {
        challengeOver(err.details.result, null);   // a challenge ends at its question's time limit
      } else if (err.code === 'deadline_passed' || err.status === 410) {
        if (serverNow() >= (st.attempt.deadline_at || 0) - 1500 || !qLimitMs) {
          toast(t('h5.timeUp'), 'info');
          finishNow();
        } else {
          toast(t('h5.qTimeUp'), 'info');
          st.skipped.add(q.index);
          if (remaining() > 0) advance(); else showReview();
        }
      } else if (err.status === 404) {
        toastError(err);
        storeAttempt(null);
        stopTimers();
        showList();
      } else {
        toastError(err);
        st.phase = 'answering';
        render();
      }
    }
  }

  /** The run is over (first wrong answer, last question, or time): show the answer, then the result. */
  function challengeOver(result, r) {
    stopTimers();
    storeAttempt(null);
    if (r && r.correct_choice !== undefined && r.correct_choice !== null) {
      st.phase = 'feedback';
      render();
      toast(t('h5c.challengeOver'), 'info');
      setTimeout(() => showResult(st.cid, result), r.correct ? 1200 : 2200);
    } else {
      toast(t('h5c.challengeOver'), 'info');
      showResult(st.cid, result);
    }
  }

  function render() {
    const q = questions[st.pos];
    if (!q) { showReview(); return; }
    const isMulti = q.type === 'multiple';
    const res = st.results.get(q.index);
    const answeredChoice = st.answered.get(q.index);
    const locked = st.phase !== 'answering' || st.answered.has(q.index);
    const correctKeys = res && res.correct_choice != null ? choiceKeys(res.correct_choice) : null;
    const chosenKeys = answeredChoice !== undefined ? choiceKeys(answeredChoice) : [...st.selection];
    const isLast = st.pos === questions.length - 1 || (remaining() === 0) ||
      (remaining() === 1 && !st.answered.has(q.index));

    const opts = h('div.options', { role: isMulti ? 'group' : 'radiogroup', 'aria-labelledby': 'q-stem' },
      (q.options || []).map((o) => {
        const chosen = chosenKeys.includes(o.key);
        const cls = [];
        if (correctKeys) {
          if (correctKeys.includes(o.key)) cls.push('correct');
          else if (chosen) cls.push('wrong');
        }
        return h('button.option' + (isMulti ? '.multi' : '') + cls.map((c) => '.' + c).join(''), {
          type: 'button', testid: 'option', dataset: { key: o.key },
          'aria-pressed': chosen ? 'true' : 'false', disabled: locked,
          onclick: () => {
            if (st.phase !== 'answering') return;
            if (isMulti) {
              if (st.selection.has(o.key)) st.selection.delete(o.key); else st.selection.add(o.key);
            } else {
              st.selection = new Set([o.key]);
            }
            render();
          },
        }, h('span.key', o.key), h('span.text', o.text));
      }));

    let feedback = null;
    if (res && correctKeys) {
      feedback = h('div.feedback.' + (res.correct ? 'ok' : 'bad'), { testid: 'feedback', role: 'status' },
        res.correct ? t('h5.correct', { p: (res.points_awarded != null ? res.points_awarded : 0) })
          : t('h5.incorrect', { c: correctKeys.join('') }),
        res.explanation ? h('div.expl', res.explanation) : null);
    } else if (st.answered.has(q.index) && !correctKeys) {
      feedback = h('div.feedback.info', { role: 'status' }, t('h5.saved'));
    }

    const actions = h('div.q-actions');
    if (!st.answered.has(q.index)) {
      actions.append(h('button.btn.block', {
        type: 'button', testid: 'submit-answer', disabled: st.phase !== 'answering' || !st.selection.size, onclick: submit,
      }, st.phase === 'sending' ? t('h5.sending') : t('h5.submit')));
    } else if (remaining() > 0) {
      actions.append(h('button.btn.block', { type: 'button', testid: 'next', onclick: advance }, t('h5.next')));
    }
    if (st.retrying) actions.append(h('div.retrying', { role: 'status' }, t('h5.retrying')));
    if (isLast) {
      actions.append(h('button.btn.block' + (st.answered.has(q.index) ? '' : '.secondary'), {
        type: 'button', testid: 'finish', disabled: st.phase === 'sending',
        onclick: () => confirmFinish(),
      }, t('h5.finish')));
    }
    actions.append(h('button.btn.link', { type: 'button', onclick: showReview, disabled: st.phase === 'sending' }, t('h5.review')));

    timerEl = h('span.q-timer', { testid: 'countdown', 'aria-label': t('h5.timeLeft') }, '--:--');
    qTimerEl = qLimitMs ? h('span.q-qtimer', { testid: 'question-countdown' }) : null;
    const done = st.answered.size;
    fill(app, h('div.card',
      h('div.q-head',
        h('span.q-progress', { testid: 'progress' }, challenge
          ? t('h5c.challengeProgress', { i: st.pos + 1, n: st.attempt.max_questions || '—' })
          : t('h5.progress', { i: st.pos + 1, n: questions.length })),
        h('span.badge', typeText(q.type)),
        q.points ? h('span.muted.small', t('h5.points', { p: q.points })) : null,
        timerEl),
      h('div.progress-bar', h('div', { style: `width:${Math.round((done / (challenge ? st.attempt.max_questions || questions.length : questions.length)) * 100)}%` })),
      challenge ? h('p.muted.small', { testid: 'challenge-hint' }, t('h5c.challengeHint')) : null,
      qTimerEl,
      h('div.q-stem#q-stem', { testid: 'question-stem', dataset: { index: q.index } }, q.stem),
      isMulti ? h('p.muted.small', t('h5.multiHint')) : null,
      opts, feedback, actions));
    tick();
  }

  function confirmFinish() {
    const open = remaining();
    if (open > 0 && !window.confirm(t('h5.confirmFinish', { n: open }))) return;
    finishNow();
  }

  function showReview() {
    clearTimeout(st.advanceTimer);
    timerEl = h('span.q-timer', { testid: 'countdown' }, '--:--');
    qTimerEl = null;
    const open = remaining();
    fill(app, h('div.card',
      h('div.q-head', h('h1', { style: 'margin:0' }, t('h5.reviewTitle')), timerEl),
      h('p', open ? t('h5.openLeft', { n: open }) : t('h5.allDone')),
      h('div.review-grid', questions.map((q, i) => h('button' + (st.answered.has(q.index) ? '.done' : st.skipped.has(q.index) ? '.skipped' : ''), {
        type: 'button', 'aria-label': t('h5.progress', { i: i + 1, n: questions.length }),
        disabled: st.answered.has(q.index) || st.skipped.has(q.index),
        onclick: () => goto(i),
      }, String(i + 1)))),
      h('div.q-actions',
        h('button.btn.block', { type: 'button', testid: 'finish', onclick: () => confirmFinish() }, t('h5.finish')))));
    rerender = showReview;
    tick();
  }

  stopTimers();
  stopTimers = () => { clearInterval(interval); clearTimeout(st.advanceTimer); };
  setBack(null);
  rerender = () => render();

  const start = firstOpen(0);
  if (start < 0) { showReview(); } else { st.pos = start; render(); }

  // an answer that was in flight when the page was closed: send it again (same choice)
  const pos = pendingPosition(pending, st.answered, questions);
  if (pos >= 0) {
    st.pos = pos;
    st.selection = new Set(choiceKeys(pending.choice));
    render();
    submit();
  }
}

/** POST an answer; network failures, 5xx and 429 are retried with the same choice until the deadline. */
function sendAnswer(st, index, choice, onRetry) {
  const path = aidPath(st.attempt.attempt_id) + '/answers';
  return sendWithRetry(() => api.post(path, { index, choice }, { retries: 2 }), {
    pause: retryPause,
    giveUp: () => Boolean(st.attempt.deadline_at) && serverNow() > st.attempt.deadline_at + 5000,
    onRetry,
  });
}

async function finishAttempt({ attempt, cid }) {
  fill(app, h('p.empty.spinner', t('h5.finishing')));
  const path = aidPath(attempt.attempt_id) + '/finish';
  let fin = null;
  for (let i = 0; i < 12 && !fin; i++) {
    try {
      fin = await api.post(path, {}, { retries: 2 });
    } catch (err) {
      if (err.status === 410 || err.code === 'deadline_passed' || err.status === 409) {
        // finished by the service at the deadline: read the final state
        try {
          const a = await api.get(aidPath(attempt.attempt_id));
          fin = { attempt_id: a.attempt_id, score: a.score, rank: null, question_count: (a.questions || []).length,
            correct_count: a.correct_count };
        } catch (_) { fin = { attempt_id: attempt.attempt_id, score: null, rank: null }; }
        break;
      }
      if (err.status === 401) { showRegister(); return; }
      if (err.status === 404) { storeAttempt(null); toastError(err); showList(); return; }
      if (!isTransient(err)) { toastError(err); break; }
      fill(app, h('p.empty.spinner', t('h5.finishing')), h('div.retrying', { role: 'status' }, t('h5.retrying')));
      await retryPause(finishBackoffMs(i));
    }
  }
  if (!fin) {
    toast(t('h5.finishFailed'), 'error', 5000);
    fin = { attempt_id: attempt.attempt_id, score: null, rank: null };
  } else {
    storeAttempt(null);
  }
  showResult(cid, fin);
}

// ---------------------------------------------------------------- result + boards
function boardList(entries, myId) {
  if (!entries || !entries.length) return h('p.empty', t('h5.boardEmpty'));
  return h('ol.board', { testid: 'board' }, entries.map((e) => h('li' + (String(e.user_id) === String(myId) ? '.me' : ''), {
    dataset: { userId: e.user_id },
  },
  h('span.b-rank' + (e.rank <= 3 ? '.top' : ''), String(e.rank != null ? e.rank : '—')),
  h('span.b-name', e.name || '—', h('small', e.org_name || '')),
  h('span.b-score', fmtNum(e.score, 1), h('small', fmtDuration(e.duration_ms))))));
}

function boardsCard(cid) {
  const tabs = [
    { id: 'total', label: t('h5.boardTotal'), query: { board: 'total' } },
    { id: 'org', label: t('h5.boardOrg'), query: { board: 'total', org_id: me && me.org_id } },
    { id: 'daily', label: t('h5.boardDaily'), query: { board: 'daily' } },
  ];
  const body = h('div', { 'aria-live': 'polite' }, h('p.empty.spinner', t('common.loading')));
  const tabBar = h('div.tabs', { role: 'tablist' });
  async function select(tab) {
    for (const b of tabBar.children) b.setAttribute('aria-selected', b.dataset.tab === tab.id ? 'true' : 'false');
    fill(body, h('p.empty.spinner', t('common.loading')));
    try {
      const r = await api.get(cidPath(cid) + '/leaderboard', { ...tab.query, limit: 50 });
      fill(body, boardList(r.entries, auth && auth.user_id),
        r.total ? h('p.muted.small', { style: 'text-align:center' }, t('h5.boardTotalN', { n: r.total })) : null);
    } catch (err) {
      fill(body, h('p.empty', errorText(err)));
    }
  }
  for (const tab of tabs) {
    tabBar.append(h('button', { type: 'button', role: 'tab', testid: 'board-tab', dataset: { tab: tab.id }, onclick: () => select(tab) }, tab.label));
  }
  select(tabs[0]);
  return h('div.card', { testid: 'boards' }, h('h2', t('h5.leaderboard')), tabBar, body);
}

function showResult(cid, fin) {
  let mine = null;
  const extras = resultExtras(api, { cid, fin, onRecap: (aid) => screen(() => showRecap(api, app, aid), { back: () => showResult(cid, fin) }) });
  const render = () => {
    // the API gives the percentile in percent: the share of other entrants ranked below
    const pct = mine && mine.percentile !== undefined && mine.percentile !== null
      ? `${fmtNum(mine.percentile, 1)}%` : null;
    const rank = fin.rank != null ? fin.rank : mine && mine.rank != null ? mine.rank : null;
    fill(app,
      h('div.result-hero',
        h('div.sub', t('h5.yourScore')),
        h('div.big', { testid: 'score' }, fin.score === null || fin.score === undefined ? '—' : fmtNum(fin.score, 1)),
        h('div.result-grid',
          h('div', h('b', { testid: 'rank' }, rank === null ? '—' : String(rank)), t('h5.rank')),
          h('div', h('b', fin.question_count ? `${(fin.correct_count != null ? fin.correct_count : '—')}/${fin.question_count}` : '—'), t('h5.correctCount')),
          h('div', h('b', fmtDuration(fin.duration_ms)), t('h5.duration'))),
        h('div.sub', { style: 'margin-top:.6rem' },
          fin.best_score !== undefined && fin.best_score !== null ? t('h5.best', { s: fmtNum(fin.best_score, 1) }) + ' ' : '',
          pct ? h('span', { testid: 'percentile' }, t('h5.percentile', { p: pct })) : '',
          mine && mine.total ? ' ' + t('h5.ofTotal', { n: mine.total }) : '')),
      mine && mine.around && mine.around.length
        ? h('div.card', { testid: 'around-me' }, h('h2', t('h5.aroundMe')), boardList(mine.around, auth && auth.user_id)) : null,
      extras,
      boardsCard(cid),
      h('div.q-actions',
        h('button.btn.block', { type: 'button', onclick: () => showDetail(cid) }, t('h5.again')),
        h('button.btn.secondary.block', { type: 'button', onclick: () => showList() }, t('h5.backToList'))));
  };
  screen(render, { back: () => showList() });
  api.get(cidPath(cid) + '/leaderboard/me', { board: 'total', around: 5 })
    .then((r) => { mine = r; if (rerender === render) render(); })
    .catch(() => {});
}

function showBoards(cid) {
  let mine = null;
  const render = () => {
    fill(app,
      mine && mine.rank ? h('div.card', h('p', t('h5.myBest', { score: fmtNum(mine.score, 1), rank: mine.rank })),
        mine.around && mine.around.length ? boardList(mine.around, auth && auth.user_id) : null) : null,
      boardsCard(cid));
  };
  screen(render, { back: () => showDetail(cid) });
  api.get(cidPath(cid) + '/leaderboard/me', { board: 'total', around: 3 })
    .then((r) => { mine = r; if (rerender === render) render(); })
    .catch(() => {});
}

boot().catch((err) => { console.error(err); toastError(err); });
