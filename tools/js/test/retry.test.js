import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  answerBackoffMs, finishBackoffMs, isTransient, pendingPosition, retryDelay, sendWithRetry,
} from '../../../contest/static/common/retry.js';

const failure = (status) => Object.assign(new Error(`HTTP ${status}`), { status, isNetwork: status === 0 });

test('Retry-After wins when the server sent one: seconds or a date, never above 30 s', () => {
  const now = Date.parse('2026-12-03T20:00:00Z');
  assert.equal(retryDelay(0, '2', now), 2000);
  assert.equal(retryDelay(5, '0', now), 0);
  assert.equal(retryDelay(0, '120', now), 30000);
  assert.equal(retryDelay(0, '-3', now), 0);
  assert.equal(retryDelay(0, 'Thu, 03 Dec 2026 20:00:05 GMT', now), 5000);
  assert.equal(retryDelay(0, 'Thu, 03 Dec 2026 19:59:00 GMT', now), 0);
});

test('without Retry-After: exponential backoff with jitter, half to all of 400 ms * 2^n, at most 8 s', () => {
  const low = () => 0;
  const high = () => 1;
  assert.equal(retryDelay(0, null, 0, low), 200);
  assert.equal(retryDelay(0, null, 0, high), 400);
  assert.equal(retryDelay(2, null, 0, low), 800);
  assert.equal(retryDelay(2, null, 0, high), 1600);
  assert.equal(retryDelay(10, null, 0, high), 8000);
  assert.equal(retryDelay(1, 'not a delay', 0, high), 800);  // a garbled header falls back to the backoff
});

test('only network failures, 5xx and 429 are worth another try', () => {
  for (const status of [0, 429, 500, 502, 503]) assert.equal(isTransient(failure(status)), true, String(status));
  for (const status of [400, 401, 403, 404, 409, 410, 413]) assert.equal(isTransient(failure(status)), false, String(status));
  assert.equal(isTransient(null), false);
});

test('pauses: answers 1, 2, 4, then 8 s; finishes 1.5 s more each time up to 8 s', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 9].map(answerBackoffMs), [1000, 2000, 4000, 8000, 8000, 8000]);
  assert.deepEqual([0, 1, 2, 4, 5, 20].map(finishBackoffMs), [1500, 3000, 4500, 7500, 8000, 8000]);
});

/** A send that fails with the given statuses, one per call, then answers `reply`. */
function flaky(statuses, reply) {
  const calls = [];
  return {
    calls,
    send: async () => {
      calls.push(calls.length);
      if (calls.length <= statuses.length) throw failure(statuses[calls.length - 1]);
      return reply;
    },
  };
}

test('an answer is sent again through network failures and 503s until it gets through', async () => {
  const { calls, send } = flaky([0, 503, 429], { index: 3, correct: true });
  const pauses = [];
  const states = [];
  const reply = await sendWithRetry(send, {
    pause: async (ms) => { pauses.push(ms); },
    onRetry: (on) => states.push(on),
  });
  assert.deepEqual(reply, { index: 3, correct: true });
  assert.equal(calls.length, 4);
  assert.deepEqual(pauses, [1000, 2000, 4000]);
  assert.deepEqual(states, [true, true, true, false]);
});

test('a refusal is not retried: the caller gets it at once', async () => {
  for (const status of [409, 410, 400, 401, 404]) {
    const { calls, send } = flaky([status], 'never');
    await assert.rejects(sendWithRetry(send, { pause: async () => {} }), (err) => err.status === status);
    assert.equal(calls.length, 1, String(status));
  }
});

test('past the deadline the retries stop and the last failure is thrown', async () => {
  const { calls, send } = flaky([503, 503, 503, 503], 'late');
  let now = 0;
  const pauses = [];
  await assert.rejects(sendWithRetry(send, {
    pause: async (ms) => { pauses.push(ms); now += ms; },
    giveUp: () => now > 2500,
  }), (err) => err.status === 503);
  assert.equal(calls.length, 3);   // failed at 0 and 1 s; the third failure came at 3 s, past the deadline
  assert.deepEqual(pauses, [1000, 2000]);
});

test('after a reload the answer in flight is resumed at its question, unless it was answered meanwhile', () => {
  const questions = [{ index: 4 }, { index: 0 }, { index: 7 }];
  assert.equal(pendingPosition({ index: 7, choice: 'B' }, new Map(), questions), 2);
  assert.equal(pendingPosition({ index: 7, choice: 'B' }, new Map([[7, 'B']]), questions), -1);
  assert.equal(pendingPosition({ index: 9, choice: 'A' }, new Set(), questions), -1);
  assert.equal(pendingPosition(null, new Map(), questions), -1);
  assert.equal(pendingPosition(undefined, new Map(), questions), -1);
});
