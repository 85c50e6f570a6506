// Token sign-in shared by the dashboard and the admin pages.
// Token sources: ?token=...&contest=... (taken once, then removed from the address bar),
// the login form; kept in sessionStorage.
import {
  createApi, takeStaffTokenFromUrl, loadStaffToken, saveStaffToken, clearStaffToken,
} from '/static/common/api.js';
import { t, applyI18n, onLangChange, mountLangToggle } from '/static/common/i18n.js';
import { toast, errorText } from '/static/common/util.js';

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

  let started = false;
  function showLogin(expired) {
    token = null;
    clearStaffToken();
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
    main.hidden = false;
    logoutBtn.hidden = false;
    started = true;
    onReady(api, me, contest);
  }

  loginForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = document.getElementById('login-token').value.trim();
    if (!v) return;
    token = v;
    saveStaffToken(v);
    document.getElementById('login-token').value = '';
    tryStart();
  });
  logoutBtn.addEventListener('click', () => showLogin(false));

  if (token) tryStart(); else showLogin(false);
  return api;
}
