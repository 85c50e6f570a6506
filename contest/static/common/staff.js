// Sign-in shared by the dashboard and the admin pages: an organizer's phone and an SMS code
// (POST /api/v1/auth/staff/login), or a pasted token (scripts, `quiz token`).
// Token sources: the SMS sign-in, ?token=...&contest=... (taken once, then removed from the
// address bar), the token form; kept in sessionStorage.
import {
  createApi, takeStaffTokenFromUrl, loadStaffToken, saveStaffToken, clearStaffToken,
} from '/static/common/api.js';
import { t, applyI18n, onLangChange, mountLangToggle } from '/static/common/i18n.js';
import { h, toast, errorText } from '/static/common/util.js';
import { codeField, normalizePhone, rememberPhone, rememberedPhone } from '/static/common/signin.js';

const SMS_KEY = 'quiz.staffSms';
const REFRESH_MS = 60 * 60 * 1000;

/** The SMS sign-in card placed above the token form; calls onToken(token) when signed in. */
function smsLoginCard(api, onToken) {
  const phoneIn = h('input#staff-phone', {
    type: 'tel', testid: 'staff-phone', autocomplete: 'tel', inputmode: 'numeric', maxlength: 20,
    value: rememberedPhone(),
  });
  const code = codeField({ api, getPhone: () => phoneIn.value, purpose: 'staff', prefix: 'staff' });
  const submit = h('button.btn', { type: 'submit', testid: 'staff-login' }, t('sms.submit'));
  const form = h('form.card.login-card#sms-login', { novalidate: true, hidden: true },
    h('h1', t('sms.staffTitle')),
    h('p.muted.small', t('sms.staffHint')),
    h('label', { for: 'staff-phone' }, t('h5.phone')), phoneIn,
    h('label', t('sms.code')), code.row,
    h('div', { style: 'margin-top:.8rem' }, submit),
    h('p.muted.small', { style: 'margin-top:.8rem' }, t('sms.orToken')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const phone = normalizePhone(phoneIn.value);
    if (!phone) { toast(t('sms.needPhone'), 'error'); return; }
    if (!/^\d{6}$/.test(code.value())) { toast(t('sms.needCode'), 'error'); return; }
    submit.disabled = true;
    try {
      const r = await api.post('/api/v1/auth/staff/login', { phone, code: code.value() }, { auth: false, retries: 0 });
      rememberPhone(phone);
      code.input.value = '';
      onToken(r.token);
    } catch (err) {
      toast(errorText(err), 'error', 4500);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/**
 * startStaffPage({onReady(api, me, initialContest), onLogout})
 * Expects #login (form with #login-token), #main, #logout and #lang-slot in the page.
 */
export function startStaffPage({ onReady, onLogout }) {
  const { contest } = takeStaffTokenFromUrl();
  let token = loadStaffToken();
  const loginForm = document.getElementById('login');
  const main = document.getElementById('main');
  const logoutBtn = document.getElementById('logout');
  const api = createApi({
    getToken: () => token,
    onUnauthorized: () => { showLogin(true); },
  });

  mountLangToggle(document.getElementById('lang-slot'));
  applyI18n(document);
  onLangChange(() => applyI18n(document));

  const smsForm = smsLoginCard(api, (v) => {
    token = v;
    saveStaffToken(v);
    sessionStorage.setItem(SMS_KEY, '1');
    tryStart();
  });
  // a token from the SMS sign-in lasts 12 h: a dashboard left open all day renews it quietly
  // (pasted tokens from `quiz token` cannot be refreshed and keep their own expiry)
  setInterval(async () => {
    if (!token || !started || sessionStorage.getItem(SMS_KEY) !== '1') return;
    try {
      const r = await api.post('/api/v1/auth/refresh', undefined, { retries: 0 });
      token = r.token;
      saveStaffToken(r.token);
    } catch (_) { /* a refused token shows the sign-in on the next request */ }
  }, REFRESH_MS);
  loginForm.before(smsForm);

  let started = false;
  function showLogin(expired) {
    token = null;
    clearStaffToken();
    smsForm.hidden = false;
    loginForm.hidden = false;
    main.hidden = true;
    logoutBtn.hidden = true;
    if (expired && started) toast(t('err.token_expired'), 'error');
    if (started && onLogout) onLogout();
    started = false;
  }

  async function tryStart() {
    let me;
    try {
      me = await api.get('/api/v1/me');
    } catch (err) {
      if (err.status === 401 || err.status === 403) {
        showLogin(false);
        toast(errorText(err), 'error');
        return;
      }
      me = { role: 'unknown' };  // /me unavailable: keep going with the token as is
    }
    if (me.role === 'participant') {
      showLogin(false);
      toast(t('err.forbidden'), 'error');
      return;
    }
    loginForm.hidden = true;
    smsForm.hidden = true;
    main.hidden = false;
    logoutBtn.hidden = false;
    started = true;
    onReady(api, me, contest);
  }

  loginForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = document.getElementById('login-token').value.trim();
    if (!v) return;
    sessionStorage.removeItem(SMS_KEY);
    token = v;
    saveStaffToken(v);
    document.getElementById('login-token').value = '';
    tryStart();
  });
  logoutBtn.addEventListener('click', () => showLogin(false));

  if (token) tryStart(); else showLogin(false);
  return api;
}
