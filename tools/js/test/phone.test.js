import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalizePhone } from '../../../contest/static/common/phone.js';

// the same spellings contest/phones.py folds to one number (tests/test_phones.py)
test('every way a person types a mainland mobile gives its 11 digits', () => {
  for (const typed of ['13912345678', '139 1234 5678', '139-1234-5678', '(139)12345678', '+86 139 1234 5678',
    '8613912345678', '008613912345678', '１３９１２３４５６７８', '139\u300012345678', ' 13912345678 ']) {
    assert.equal(normalizePhone(typed), '13912345678', typed);
  }
});

test('anything else is refused with an empty string', () => {
  for (const typed of ['', null, undefined, '1391234567', '139123456789', '12912345678', '23912345678',
    '1391234567a', '+1 139 1234 5678', '86139123456']) {
    assert.equal(normalizePhone(typed), '', String(typed));
  }
});

test('an 11-digit number starting with 86 is not a prefixed one', () => {
  assert.equal(normalizePhone('86139123456'), '');   // 11 digits: nothing to strip, and not a mobile
  assert.equal(normalizePhone('+8613812345678'), '13812345678');
});
