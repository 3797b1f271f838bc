import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UnsupportedOptionError } from '../../src/core/errors.js';
import { cosineSchedule } from '../../src/train/lr-schedule.js';

test('warm-up ramps linearly to lr, then the cosine reaches minLr at the last step', () => {
  const f = cosineSchedule({ lr: 1, steps: 11, warmup: 2, minLr: 0.1 });
  assert.equal(f(0), 0.5);
  assert.equal(f(1), 1);
  assert.equal(f(2), 1);
  assert.ok(Math.abs(f(6) - (0.1 + (0.9 * (1 + Math.cos(Math.PI * (4 / 8)))) / 2)) < 1e-15);
  assert.ok(Math.abs(f(10) - 0.1) < 1e-15);
  assert.ok(Math.abs(f(20) - 0.1) < 1e-15);
  const g = cosineSchedule({ lr: 2, steps: 5 });
  assert.equal(g(0), 2);
  assert.ok(Math.abs(g(4)) < 1e-15);
  assert.throws(() => cosineSchedule({ lr: 1, steps: 5, warmup: 5 }), UnsupportedOptionError);
  assert.throws(() => cosineSchedule({ lr: 1, steps: 5, minLr: 2 }), UnsupportedOptionError);
});
