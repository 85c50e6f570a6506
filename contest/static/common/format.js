// Formatting of times, durations and figures for every page. No imports and no DOM, so Node's test
// runner loads it as is (tools/js/test/format.test.js); util.js hands it the page's language.

const pad = (n) => String(n).padStart(2, '0');

/** Local date and time, 'YYYY-MM-DD HH:MM'; '—' for nothing. */
export function fmtDateTime(ms) {
  if (ms === null || ms === undefined || ms === '') return '—';
  const d = new Date(Number(ms));
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
export function fmtClock(ms) {
  const d = new Date(Number(ms));
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
/** 83000 -> "01:23"; 3723000 -> "1:02:03"; a time already up shows "00:00". */
export function fmtCountdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  return hh ? `${hh}:${pad(mm)}:${pad(ss)}` : `${pad(mm)}:${pad(ss)}`;
}
/** 12345 -> "12.3秒" ("12.3s" in English); a minute and more -> "2分5秒" ("2m 5s"). */
export function fmtDuration(ms, lang = 'zh') {
  if (ms === null || ms === undefined) return '—';
  const s = Math.round(Number(ms) / 100) / 10;
  if (s < 60) return lang === 'en' ? `${s}s` : `${s}秒`;
  const m = Math.floor(s / 60);
  const r = Math.round(s - m * 60);
  return lang === 'en' ? `${m}m ${r}s` : `${m}分${r}秒`;
}
/** A fraction as a percentage: 0.1234 -> "12.3%". */
export function fmtPct(frac, digits = 1) {
  if (frac === null || frac === undefined || Number.isNaN(Number(frac))) return '—';
  return `${(Number(frac) * 100).toFixed(digits)}%`;
}
/** 1234567 -> "1,234,567", at most `digits` decimals. */
export function fmtNum(n, digits = 0, lang = 'zh') {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return '—';
  return Number(n).toLocaleString(lang === 'en' ? 'en-US' : 'zh-CN', {
    maximumFractionDigits: digits, minimumFractionDigits: 0,
  });
}
