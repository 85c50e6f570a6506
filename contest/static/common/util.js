// DOM helpers, toasts, formatting, the live (SSE) feed.
import { t, getLang } from '/static/common/i18n.js';
import { fmtDuration as formatDuration, fmtNum as formatNum } from '/static/common/format.js';

/** h('div.cls#id', {attrs}, ...children) — tiny element builder. */
export function h(tag, attrs, ...children) {
  const m = /^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i.exec(tag) || [];
  const el = document.createElement(m[1] || 'div');
  for (const part of (m[2] || '').match(/[.#][\w-]+/g) || []) {
    if (part[0] === '.') el.classList.add(part.slice(1)); else el.id = part.slice(1);
  }
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'html') el.innerHTML = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'testid') el.setAttribute('data-testid', v);
    else if (k === 'value') el.value = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  appendChildren(el, children);
  return el;
}
function appendChildren(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) appendChildren(el, c);
    else el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

// ---- toast -----------------------------------------------------------------
let toastBox = null;
export function toast(message, kind = 'info', ms = 3200) {
  if (!toastBox) {
    toastBox = h('div.toast-box', { role: 'status', 'aria-live': 'polite' });
    document.body.appendChild(toastBox);
  }
  const el = h('div.toast.toast-' + kind, { testid: 'toast' }, message);
  toastBox.appendChild(el);
  setTimeout(() => { el.classList.add('toast-hide'); setTimeout(() => el.remove(), 400); }, ms);
}

/** Human text for an error (ApiError or anything else); never raw JSON. */
export function errorText(err) {
  if (!err) return t('err.generic');
  // The server answers in the page's language (Accept-Language); its message names the fields by
  // their form labels, so it says more than the generic text of the code.
  if (err.status && err.message && getLang() !== 'en' && /[\u4e00-\u9fff]/.test(err.message)) return err.message;
  const code = err.code;
  if (code) {
    const key = 'err.' + code;
    const tr = t(key);
    if (tr !== key) {
      const rows = err.details && err.details.errors;
      return tr + (Array.isArray(rows) && rows.length ? ` (${rows.length})` : '');
    }
  }
  if (err.details && typeof err.details === 'object' && !Array.isArray(err.details)) {
    const fields = Object.keys(err.details).filter((k) => k !== 'errors');
    if (err.message && fields.length) return `${err.message}: ${fields.join(', ')}`;
  }
  if (err.message && !/^\s*[{[]/.test(err.message)) return err.message;
  return t('err.generic');
}
export function toastError(err) { toast(errorText(err), 'error', 4500); }

// ---- formatting (common/format.js, in the page's language) ---------------------
export { fmtDateTime, fmtClock, fmtCountdown, fmtPct } from '/static/common/format.js';
export function fmtDuration(ms) { return formatDuration(ms, getLang()); }
export function fmtNum(n, digits = 0) { return formatNum(n, digits, getLang()); }
export function statusText(status) {
  const key = 'status.' + status;
  const tr = t(key);
  return tr === key ? String(status || '') : tr;
}

// ---- live feed ---------------------------------------------------------------
/**
 * Subscribe to GET /api/v1/contests/{cid}/live (SSE, `snapshot` events).
 * EventSource reconnects by itself. Returns {close(), isFresh()}; isFresh() is true while a
 * snapshot arrived in the last `staleMs`.
 */
export function liveFeed(cid, onSnapshot, { staleMs = 5000, onState } = {}) {
  let last = 0;
  let es = null;
  let closed = false;
  function open() {
    if (closed || typeof EventSource === 'undefined') return;
    es = new EventSource(`/api/v1/contests/${encodeURIComponent(cid)}/live`);
    const handle = (ev) => {
      let data;
      try { data = JSON.parse(ev.data); } catch (_) { return; }
      last = Date.now();
      if (onState) onState(true);
      onSnapshot(data);
    };
    es.addEventListener('snapshot', handle);
    es.onmessage = handle;           // tolerate servers that send unnamed events
    es.onerror = () => {
      if (onState) onState(false);
      // A closed (not reconnecting) stream, e.g. after a 4xx: reopen later ourselves.
      if (es && es.readyState === 2 && !closed) { es = null; setTimeout(open, 5000); }
    };
  }
  open();
  return {
    close() { closed = true; if (es) es.close(); },
    isFresh() { return Date.now() - last < staleMs; },
  };
}

/** Runs fn now and every ms while the page is visible; returns a stop function. */
export function every(ms, fn) {
  let stopped = false;
  let timer = null;
  let running = false;
  async function tick() {
    if (stopped) return;
    if (!document.hidden && !running) {
      running = true;
      try { await fn(); } catch (e) { console.warn(e); } finally { running = false; }
    }
    if (!stopped) timer = setTimeout(tick, ms);
  }
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

/** Replace children of a container. */
export function fill(container, ...children) {
  // not replaceChildren(): Android WeChat's webview has it only from Chromium 86, iOS from 14
  container.textContent = '';
  appendChildren(container, children);
}

export function debounce(fn, ms) {
  let timer = null;
  return (...a) => { clearTimeout(timer); timer = setTimeout(() => fn(...a), ms); };
}
