import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keptKeys, visibleKeys } from '../../src/attention/causal.js';

const rows = (nq: number, nk: number, alignment: 'top-left' | 'bottom-right') =>
  Array.from({ length: nq }, (_, i) => keptKeys(i, nq, nk, alignment));

test('top-left keeps j <= i, clamped to Nk', () => {
  assert.deepEqual(rows(4, 4, 'top-left'), [1, 2, 3, 4]);
  assert.deepEqual(rows(5, 3, 'top-left'), [1, 2, 3, 3, 3]);
  assert.deepEqual(rows(2, 6, 'top-left'), [1, 2]);
});

test('bottom-right keeps j <= i + Nk - Nq: the last query sees every key', () => {
  assert.deepEqual(rows(4, 4, 'bottom-right'), [1, 2, 3, 4]);
  assert.deepEqual(rows(2, 6, 'bottom-right'), [5, 6]);
  assert.deepEqual(rows(5, 3, 'bottom-right'), [0, 0, 1, 2, 3]);
  assert.deepEqual(rows(1, 9, 'bottom-right'), [9]);
});

test('visibleKeys is Nk without causal and keptKeys with it', () => {
  const p = { tokensQ: 5, tokensKv: 3, causalAlignment: 'bottom-right' as const };
  assert.equal(visibleKeys(0, { ...p, causal: false }), 3);
  assert.equal(visibleKeys(0, { ...p, causal: true }), 0);
  assert.equal(visibleKeys(3, { ...p, causal: true }), 2);
});
