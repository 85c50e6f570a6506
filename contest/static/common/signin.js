// Sign-in by SMS code, shared by the H5 app (participants) and the staff pages (dashboard, admin):
// the phone check the server makes, a code field the phone's keyboard can fill from the SMS
// (autocomplete="one-time-code"), and a send button that counts down to the next allowed send.
import { addMessages, t } from '/static/common/i18n.js';
import { h, toast, errorText } from '/static/common/util.js';
import { normalizePhone } from '/static/common/phone.js';

export { normalizePhone };  // the pages import it from here, with the rest of sign-in

addMessages({
  zh: {
    'sms.code': '验证码',
    'sms.codePh': '6 位数字验证码',
    'sms.send': '获取验证码',
    'sms.resend': '{n} 秒后重新获取',
    'sms.sent': '验证码已发送，5 分钟内有效',
    'sms.needPhone': '请填写正确的手机号（11 位中国大陆手机号）',
    'sms.needCode': '请填写 6 位数字验证码',
    'sms.title': '短信验证码登录',
    'sms.hint': '已经注册过？输入注册时的手机号，用短信验证码登录，答题记录和排名都在。',
    'sms.submit': '登录',
    'sms.toRegister': '还没有注册？去注册',
    'sms.toSignin': '已注册？短信登录',
    'sms.notRegistered': '该手机号尚未注册，请先注册',
    'sms.needLeaf': '请选到最下一级的单位（村、社区或支部）',
    'sms.needRegisterCode': '本次竞赛需要验证手机号：请获取验证码并填写',
    'sms.staffTitle': '组织者短信登录',
    'sms.staffHint': '输入管理员为您登记的手机号，获取验证码登录。',
    'sms.orToken': '或粘贴访问令牌',
    'err.invalid_code': '验证码错误或已过期',
    'err.not_registered': '该手机号尚未注册，请先注册',
  },
  en: {
    'sms.code': 'Code',
    'sms.codePh': '6-digit code',
    'sms.send': 'Get code',
    'sms.resend': 'Resend in {n}s',
    'sms.sent': 'Code sent, valid for 5 minutes',
    'sms.needPhone': 'Please enter a valid mainland mobile number',
    'sms.needCode': 'Please enter the 6-digit code',
    'sms.title': 'Sign in with an SMS code',
    'sms.hint': 'Registered before? Sign in with the phone you registered; your history and ranks are kept.',
    'sms.submit': 'Sign in',
    'sms.toRegister': 'New here? Register',
    'sms.toSignin': 'Registered? Sign in by SMS',
    'sms.notRegistered': 'This phone is not registered yet, please register',
    'sms.needLeaf': 'Please choose a unit at the lowest level',
    'sms.needRegisterCode': 'This contest verifies phone numbers: get a code and enter it',
    'sms.staffTitle': 'Organizer sign-in by SMS',
    'sms.staffHint': 'Enter the phone your admin registered for you and sign in with a code.',
    'sms.orToken': 'or paste an access token',
    'err.invalid_code': 'Wrong or expired code',
    'err.not_registered': 'This phone is not registered yet',
  },
});

const PHONE_KEY = 'quiz.phone';

/** The phone this browser signed in with last (to fill the sign-in form after a token expires). */
export function rememberedPhone() {
  try { return localStorage.getItem(PHONE_KEY) || ''; } catch (_) { return ''; }
}
export function rememberPhone(phone) {
  try { if (phone) localStorage.setItem(PHONE_KEY, phone); } catch (_) { /* private mode */ }
}

/**
 * codeField({api, getPhone, purpose, prefix}) -> {row, input, send, value(), focus()}
 * The code input and its send button; `prefix` names the data-testids (`${prefix}-code`, `${prefix}-send`).
 */
export function codeField({ api, getPhone, purpose, prefix }) {
  let timer = null;
  const input = h('input', {
    type: 'text', testid: `${prefix}-code`, autocomplete: 'one-time-code', inputmode: 'numeric',
    pattern: '[0-9]*', maxlength: 6, placeholder: t('sms.codePh'), 'aria-label': t('sms.code'),
  });
  const send = h('button.btn.secondary', { type: 'button', testid: `${prefix}-send` }, t('sms.send'));

  function countdown(seconds) {
    clearInterval(timer);
    let left = Math.max(1, Math.round(seconds));
    send.disabled = true;
    send.textContent = t('sms.resend', { n: left });
    timer = setInterval(() => {
      left -= 1;
      if (left <= 0 || !send.isConnected) {
        clearInterval(timer);
        send.disabled = false;
        send.textContent = t('sms.send');
        return;
      }
      send.textContent = t('sms.resend', { n: left });
    }, 1000);
  }

  send.addEventListener('click', async () => {
    const phone = normalizePhone(getPhone());
    if (!phone) { toast(t('sms.needPhone'), 'error'); return; }
    send.disabled = true;
    try {
      // no automatic retry: a 429 here is the resend clock, shown as the countdown instead
      const r = await api.post('/api/v1/auth/sms/send', { phone, purpose }, { auth: false, retries: 0 });
      toast(t('sms.sent'), 'ok');
      countdown(r.resend_after_s || 60);
      input.focus();
    } catch (err) {
      toast(errorText(err), 'error', 4500);
      const wait = err.details && err.details.retry_after_s;
      if (err.status === 429 && wait) countdown(Math.min(wait, 24 * 3600)); else send.disabled = false;
    }
  });

  const row = h('div.sms-code-row', { style: 'display:flex;gap:.5rem;align-items:center' },
    h('div', { style: 'flex:1' }, input), send);
  return {
    row, input, send,
    value: () => String(input.value || '').replace(/\D/g, ''),
    focus: () => input.focus(),
  };
}
