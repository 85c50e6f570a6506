import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  fmtClock, fmtCountdown, fmtDateTime, fmtDuration, fmtNum, fmtPct,
} from '../../../contest/static/common/format.js';

test('date and time in the local zone, zero-padded; nothing is a dash', () => {
  const ms = new Date(2026, 11, 3, 9, 5, 42).getTime();
  assert.equal(fmtDateTime(ms), '2026-12-03 09:05');
  assert.equal(fmtDateTime(String(ms)), '2026-12-03 09:05');
  assert.equal(fmtClock(ms), '09:05');
  for (const nothing of [null, undefined, '']) assert.equal(fmtDateTime(nothing), '—');
});

test('countdown: minutes:seconds under an hour, h:mm:ss above, rounded up, never negative', () => {
  assert.equal(fmtCountdown(83000), '01:23');
  assert.equal(fmtCountdown(3723000), '1:02:03');
  assert.equal(fmtCountdown(59001), '01:00');   // 59.001 s left still shows the 60th second
  assert.equal(fmtCountdown(0), '00:00');
  assert.equal(fmtCountdown(-5000), '00:00');
});

test('durations to a tenth of a second, minutes from 60 s, in either language', () => {
  assert.equal(fmtDuration(12345), '12.3秒');
  assert.equal(fmtDuration(12345, 'en'), '12.3s');
  assert.equal(fmtDuration(125000), '2分5秒');
  assert.equal(fmtDuration(125000, 'en'), '2m 5s');
  assert.equal(fmtDuration(0), '0秒');
  assert.equal(fmtDuration(null), '—');
});

test('percentages and numbers; anything not a number is a dash', () => {
  assert.equal(fmtPct(0.1234), '12.3%');
  assert.equal(fmtPct(1, 0), '100%');
  assert.equal(fmtPct(0), '0.0%');
  assert.equal(fmtNum(1234567), '1,234,567');
  assert.equal(fmtNum(1234.567, 2, 'en'), '1,234.57');
  assert.equal(fmtNum(0.5), '1');  // no decimals unless asked for
  for (const bad of [null, undefined, 'abc', NaN]) {
    assert.equal(fmtPct(bad), '—');
    assert.equal(fmtNum(bad), '—');
  }
});
