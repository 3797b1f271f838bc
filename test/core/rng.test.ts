import { test } from 'node:test';
import assert from 'node:assert/strict';
import { philox4x32, Rng } from '../../src/core/rng.js';

const hex = (a: Uint32Array) => Array.from(a, (w) => w.toString(16).padStart(8, '0')).join(' ');

test('philox4x32-10 matches the Random123 known-answer vectors', () => {
  const out = new Uint32Array(4);
  philox4x32(0, 0, 0, 0, 0, 0, out);
  assert.equal(hex(out), '6627e8d5 e169c58d bc57ac4c 9b00dbd8');
  const f = 0xffffffff;
  philox4x32(f, f, f, f, f, f, out);
  assert.equal(hex(out), '408f276d 41c83b0e a20bc7c6 6d5451fd');
  philox4x32(0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, out);
  assert.equal(hex(out), 'd16cfe09 94fdcceb 5001e420 24126ea1');
});

test('same seed gives the same stream; different seeds and splits differ', () => {
  const a = Rng.fromSeed(42);
  const b = Rng.fromSeed(42n);
  const xs = Array.from({ length: 9 }, () => a.nextUint32());
  const ys = Array.from({ length: 9 }, () => b.nextUint32());
  assert.deepEqual(xs, ys);
  const c = Rng.fromSeed(43);
  assert.notDeepEqual(
    xs,
    Array.from({ length: 9 }, () => c.nextUint32()),
  );
  // split does not depend on how much of the parent was consumed
  const p1 = Rng.fromSeed(7);
  const p2 = Rng.fromSeed(7);
  p2.nextUint32();
  assert.equal(p1.split(3).nextUint32(), p2.split(3).nextUint32());
  assert.notEqual(p1.split(3).nextUint32(), p1.split(4).nextUint32());
});

test('uniform is in [0,1) and normal has mean 0 and variance 1 to sampling accuracy', () => {
  const r = Rng.fromSeed(1);
  const n = 200000;
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < n; i++) {
    const u = r.uniform();
    assert.ok(u >= 0 && u < 1);
    const z = r.normal();
    s += z;
    s2 += z * z;
  }
  const mean = s / n;
  const variance = s2 / n - mean * mean;
  // 5 standard errors: sd(mean) = 1/sqrt(n) ≈ 0.0022, sd(var) ≈ sqrt(2/n) ≈ 0.0032
  assert.ok(Math.abs(mean) < 0.011, `mean ${mean}`);
  assert.ok(Math.abs(variance - 1) < 0.016, `variance ${variance}`);
});

test('bad seeds are rejected', () => {
  assert.throws(() => Rng.fromSeed(-1), RangeError);
  assert.throws(() => Rng.fromSeed(1.5), RangeError);
  assert.throws(() => Rng.fromSeed(1n << 64n), RangeError);
});
