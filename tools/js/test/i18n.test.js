import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addMessages, getLang, messageKeys, onLangChange, setLang, t,
} from '../../../contest/static/common/i18n.js';
// the dictionaries the pages add (they import '/static/...': tools/js/static-paths.js maps it)
import '../../../contest/static/common/i18n_campaign.js';
import '../../../contest/static/common/signin.js';

test('Chinese by default; placeholders filled, unknown ones kept', () => {
  assert.equal(getLang(), 'zh');
  assert.equal(t('h5.progress', { i: 1, n: 10 }), '第 1/10 题');
  assert.equal(t('h5.progress', { i: 1 }), '第 1/{n} 题');
  assert.equal(t('h5.progress', { i: 0, n: null }), '第 0/{n} 题');
});

test('an unknown key comes back as the key, even one named like an Object property', () => {
  assert.equal(t('no.such.key'), 'no.such.key');
  assert.equal(t('constructor'), 'constructor');
  assert.equal(t('toString'), 'toString');
});

test('English on request, falling back to Chinese for a key only Chinese has; listeners hear the switch', () => {
  addMessages({ zh: { 'test.onlyZh': '只有中文', 'test.both': '两种' }, en: { 'test.both': 'both' } });
  const heard = [];
  const stop = onLangChange((lang) => heard.push(lang));
  try {
    setLang('en');
    assert.equal(t('test.both'), 'both');
    assert.equal(t('test.onlyZh'), '只有中文');
    assert.equal(t('common.retry'), 'Retry');
    setLang('fr');   // anything but en is Chinese
    assert.equal(getLang(), 'zh');
    assert.equal(t('common.retry'), '重试');
    assert.deepEqual(heard, ['en', 'zh']);
  } finally {
    stop();
    setLang('zh');
  }
});

test('the two dictionaries have the same keys and the same placeholders', () => {
  const zh = messageKeys('zh').filter((k) => !k.startsWith('test.'));
  const en = messageKeys('en').filter((k) => !k.startsWith('test.'));
  assert.ok(zh.length > 300, `${zh.length} keys`);
  assert.ok(zh.includes('rv.pending') && zh.includes('sms.code'), 'the pages\' own dictionaries are in');
  assert.deepEqual(zh.filter((k) => !en.includes(k)), [], 'keys without an English text');
  assert.deepEqual(en.filter((k) => !zh.includes(k)), [], 'keys without a Chinese text');
  const holes = (lang, key) => {
    setLang(lang);
    return (t(key).match(/\{\w+\}/g) || []).sort().join(' ');
  };
  try {
    const differ = zh.filter((k) => holes('zh', k) !== holes('en', k));
    assert.deepEqual(differ, [], 'keys whose placeholders differ between the languages');
  } finally {
    setLang('zh');
  }
});
