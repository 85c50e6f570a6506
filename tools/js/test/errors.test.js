import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setLang } from '../../../contest/static/common/i18n.js';
import { errorText, statusText } from '../../../contest/static/common/util.js';

// the shape createApi() throws (common/api.js ApiError): status, code, message, details
const apiError = (status, code, message, details = {}) => Object.assign(new Error(message), { status, code, details });

test("the server's Chinese message is shown as is: it names the form's fields", () => {
  const err = apiError(400, 'validation_failed', '结束时间必须晚于开始时间', { fields: { ends_at: 'x' } });
  assert.equal(errorText(err), '结束时间必须晚于开始时间');
});

test('otherwise the code says it, with the number of bad rows of an import', () => {
  assert.equal(errorText(apiError(429, 'rate_limited', 'too many requests')), '操作太频繁，请稍后再试');
  assert.equal(errorText(apiError(400, 'validation_failed', 'bad rows', { errors: [{}, {}, {}] })), '填写的内容有误 (3)');
  setLang('en');
  try {
    assert.equal(errorText(apiError(400, 'validation_failed', '结束时间必须晚于开始时间')), 'Some fields are invalid');
    assert.equal(errorText(apiError(404, 'not_found', 'no contest')), 'Not found');
  } finally {
    setLang('zh');
  }
});

test('an unknown code: the message with the fields it names; never raw JSON', () => {
  assert.equal(errorText(apiError(400, 'odd_code', 'bad input', { phone: 'x', name: 'y' })), 'bad input: phone, name');
  assert.equal(errorText(apiError(400, 'odd_code', 'plain words')), 'plain words');
  assert.equal(errorText(apiError(500, 'odd_code', '{"error": {}}')), '出错了，请稍后再试');
  assert.equal(errorText(null), '出错了，请稍后再试');
});

test('contest statuses in words; an unknown one as it is', () => {
  assert.equal(statusText('running'), '进行中');
  assert.equal(statusText('ended'), '已结束');
  assert.equal(statusText('paused'), 'paused');
  assert.equal(statusText(undefined), '');
});
