// H5: "已注册？短信登录" — a participant back on a new phone, or after the token expired, signs in
// with the phone they registered and a code sent by SMS; the same user, history and ranks.
import { t } from '/static/common/i18n.js';
import { h, toast, errorText } from '/static/common/util.js';
import { codeField, normalizePhone, rememberPhone } from '/static/common/signin.js';

/**
 * signinCard({api, phone, onSignedIn(result), onRegister(phone)}) -> the form element.
 */
export function signinCard({ api, phone = '', onSignedIn, onRegister }) {
  const phoneIn = h('input#sms-phone', {
    type: 'tel', testid: 'sms-phone', autocomplete: 'tel', inputmode: 'numeric', maxlength: 20, required: true,
    placeholder: t('h5.phonePh'), value: phone,
  });
  const code = codeField({ api, getPhone: () => phoneIn.value, purpose: 'login', prefix: 'sms' });
  const submit = h('button.btn.block', { type: 'submit', testid: 'sms-submit' }, t('sms.submit'));
  const toRegister = h('button.btn.link', {
    type: 'button', testid: 'register-link', onclick: () => onRegister(phoneIn.value),
  }, t('sms.toRegister'));
  const form = h('form.card', { novalidate: true, testid: 'sms-login' },
    h('h1', t('sms.title')),
    h('p.muted.small', t('sms.hint')),
    h('label', { for: 'sms-phone' }, t('h5.phone')), phoneIn,
    h('label', t('sms.code')), code.row,
    h('div', { style: 'margin-top:1rem' }, submit),
    h('div', { style: 'margin-top:.6rem;text-align:center' }, toRegister));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const p = normalizePhone(phoneIn.value);
    if (!p) { toast(t('sms.needPhone'), 'error'); phoneIn.focus(); return; }
    if (!/^\d{6}$/.test(code.value())) { toast(t('sms.needCode'), 'error'); code.focus(); return; }
    submit.disabled = true;
    try {
      const r = await api.post('/api/v1/auth/sms/login', { phone: p, code: code.value() }, { auth: false, retries: 0 });
      rememberPhone(p);
      await onSignedIn(r);
    } catch (err) {
      if (err.code === 'not_registered') {
        toast(t('sms.notRegistered'), 'error', 4500);
        onRegister(p);
        return;
      }
      toast(errorText(err), 'error', 4500);
    } finally {
      submit.disabled = false;
    }
  });
  if (!phone) setTimeout(() => phoneIn.focus(), 0);
  return form;
}
