// The phone check the server makes (contest/phones.py, QUIZ_PHONE_PATTERN's default), for the forms
// to refuse a typo before any request. No imports and no DOM: Node's test runner loads it as is.

/** The phone as the server stores it (spaces, dashes, +86/86 removed), or '' when not a mainland mobile. */
export function normalizePhone(raw) {
  let s = String(raw || '').replace(/[\s\-()\u00a0\u3000]/g, '')
    .replace(/[\uff10-\uff19]/g, (d) => String.fromCharCode(d.charCodeAt(0) - 0xfee0));
  if (s.startsWith('+86')) s = s.slice(3);
  else if (s.startsWith('0086')) s = s.slice(4);
  else if (s.startsWith('86') && s.length === 13) s = s.slice(2);
  return /^1[3-9]\d{9}$/.test(s) ? s : '';
}
