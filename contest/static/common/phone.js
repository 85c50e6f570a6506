// The phone check the server makes (contest/phones.py, QUIZ_PHONE_PATTERN's default), for the forms
// to refuse a typo before any request. No imports and no DOM: Node's test runner loads it as is.

/** The phone as the server stores it (spaces, dashes, +86/86 removed), or '' when not a mainland mobile. */
export function normalizePhone(raw) {
  // NFKC folds full-width digits, plus and dash, and the ideographic and no-break spaces, as the
  // server does; then the same separators go (tests/test_pages_js.py compares the two)
  let s = String(raw || '').normalize('NFKC').replace(/[ \-()]/g, '');
  if (s.startsWith('+86')) s = s.slice(3);
  else if (s.startsWith('0086')) s = s.slice(4);
  else if (s.startsWith('86') && s.length === 13) s = s.slice(2);
  return /^1[3-9]\d{9}$/.test(s) ? s : '';
}
