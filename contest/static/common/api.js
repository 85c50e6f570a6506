// Small fetch wrapper for the quiz API.
import { getLang } from '/static/common/i18n.js';
import { retryDelay } from '/static/common/retry.js';

//  - adds `Authorization: Bearer <token>` when a token getter returns one
//  - parses the error shape {error: {code, message, details}} into ApiError
//  - retries network errors, 503 and 429 with exponential backoff (respects Retry-After)
//  - tracks the offset between the server clock and ours (from the Date header)

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message || code || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;        // 0 for a network failure
    this.code = code || (status ? `http_${status}` : 'network_error');
    this.details = details || {};
  }
  get isNetwork() { return this.status === 0; }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let serverOffsetMs = 0;           // server time - local time (only applied when clearly off)
export function serverNow() { return Date.now() + serverOffsetMs; }

function noteServerDate(resp) {
  const d = resp.headers.get('Date');
  if (!d) return;
  const t = Date.parse(d);
  if (Number.isNaN(t)) return;
  const off = t - Date.now();
  // The Date header has 1 s resolution: only correct clocks that are clearly wrong.
  serverOffsetMs = Math.abs(off) > 3000 ? off : 0;
}

async function parseError(resp) {
  let body = null;
  try { body = await resp.json(); } catch (_) { /* not JSON */ }
  const e = body && body.error ? body.error : {};
  return new ApiError(resp.status, e.code, e.message, e.details);
}

/**
 * createApi({getToken, onUnauthorized})
 * returns {request, get, post, patch, put, del, download}
 * request(method, path, {body, query, retries, form, signal, raw, auth})
 */
export function createApi({ getToken = () => null, onUnauthorized = null } = {}) {
  async function request(method, path, opts = {}) {
    const { body, query, form, signal, raw = false, auth = true } = opts;
    const retries = opts.retries != null ? opts.retries : 3;
    let url = path;
    if (query) {
      const qs = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) {
        if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
      }
      const s = qs.toString();
      if (s) url += (url.includes('?') ? '&' : '?') + s;
    }
    // The server words its errors in the page's language (stable codes, Chinese messages).
    const headers = { Accept: 'application/json', 'Accept-Language': getLang() === 'en' ? 'en' : 'zh-CN' };
    const token = auth ? getToken() : null;
    if (token) headers.Authorization = `Bearer ${token}`;
    let payload;
    if (form) {
      payload = form;                 // FormData: the browser sets the multipart boundary
    } else if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    for (let attempt = 0; ; attempt++) {
      let resp;
      try {
        resp = await fetch(url, { method, headers, body: payload, signal, credentials: 'same-origin' });
      } catch (err) {
        if (err && err.name === 'AbortError') throw err;
        if (attempt < retries) { await sleep(retryDelay(attempt)); continue; }
        throw new ApiError(0, 'network_error', String(err && err.message || err));
      }
      noteServerDate(resp);
      if ((resp.status === 503 || resp.status === 429) && attempt < retries) {
        await sleep(retryDelay(attempt, resp.headers.get('Retry-After')));
        continue;
      }
      if (!resp.ok) {
        const err = await parseError(resp);
        if (resp.status === 401 && onUnauthorized) onUnauthorized(err);
        throw err;
      }
      if (raw) return resp;
      resp.apiStatus = resp.status;
      if (resp.status === 204) return {};
      const ct = resp.headers.get('Content-Type') || '';
      const data = ct.includes('json') ? await resp.json() : await resp.text();
      if (data && typeof data === 'object') {
        Object.defineProperty(data, '__status', { value: resp.status, enumerable: false });
      }
      return data;
    }
  }

  /** Fetch a file with the Authorization header and save it through a blob link. */
  async function download(path, query, fallbackName) {
    const resp = await request('GET', path, { query, raw: true, retries: 2 });
    const blob = await resp.blob();
    let name = fallbackName;
    const cd = resp.headers.get('Content-Disposition') || '';
    const m = /filename\*=UTF-8''([^;]+)|filename="?([^";]+)"?/i.exec(cd);
    if (m) name = decodeURIComponent(m[1] || m[2]);
    const a = document.createElement('a');
    const href = URL.createObjectURL(blob);
    a.href = href;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(href), 10000);
    return name;
  }

  return {
    request,
    download,
    get: (p, query, o = {}) => request('GET', p, { ...o, query }),
    post: (p, body, o = {}) => request('POST', p, { ...o, body }),
    patch: (p, body, o = {}) => request('PATCH', p, { ...o, body }),
    put: (p, body, o = {}) => request('PUT', p, { ...o, body }),
    del: (p, o = {}) => request('DELETE', p, o),
  };
}

// ---- token storage ---------------------------------------------------------

const PARTICIPANT_KEY = 'quiz.auth';
const STAFF_KEY = 'quiz.staffToken';

/** Participant auth {user_id, token, expires_at} in localStorage; null when missing or expired. */
export function loadParticipantAuth() {
  try {
    const a = JSON.parse(localStorage.getItem(PARTICIPANT_KEY) || 'null');
    if (!a || !a.token) return null;
    if (a.expires_at && a.expires_at <= Date.now()) {
      localStorage.removeItem(PARTICIPANT_KEY);
      return null;
    }
    return a;
  } catch (_) { return null; }
}
export function saveParticipantAuth(a) {
  localStorage.setItem(PARTICIPANT_KEY, JSON.stringify({
    user_id: a.user_id, token: a.token, expires_at: a.expires_at, issued_at: a.issued_at,
  }));
}
export function clearParticipantAuth() { localStorage.removeItem(PARTICIPANT_KEY); }

/**
 * Organizer/admin token: taken once from ?token= (and ?contest=), then kept in sessionStorage
 * and removed from the address bar. Returns {token, contest}.
 */
export function takeStaffTokenFromUrl() {
  const url = new URL(location.href);
  const token = url.searchParams.get('token');
  const contest = url.searchParams.get('contest');
  if (token) sessionStorage.setItem(STAFF_KEY, token);
  if (contest) sessionStorage.setItem('quiz.staffContest', contest);
  if (token || contest) {
    url.searchParams.delete('token');
    url.searchParams.delete('contest');
    history.replaceState(null, '', url.pathname + (url.search || '') + url.hash);
  }
  return { token: sessionStorage.getItem(STAFF_KEY), contest: sessionStorage.getItem('quiz.staffContest') };
}
export function loadStaffToken() { return sessionStorage.getItem(STAFF_KEY); }
export function saveStaffToken(t) { sessionStorage.setItem(STAFF_KEY, t); }
export function clearStaffToken() { sessionStorage.removeItem(STAFF_KEY); }
export function saveStaffContest(c) { if (c) sessionStorage.setItem('quiz.staffContest', c); }
