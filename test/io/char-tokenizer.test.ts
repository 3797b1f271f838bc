import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { UnsupportedOptionError } from '../../src/core/errors.js';
import { CharTokenizer } from '../../src/io/char-tokenizer.js';
import { SHIPPED_TEXTS, dataPath, readShippedText } from '../../src/io/shipped-text.js';

test('ids follow code-point order; encode and decode round-trip; specials come last', () => {
  const tok = CharTokenizer.fromText('banana!', { specials: ['[MASK]'] });
  assert.deepEqual(tok.alphabet, ['!', 'a', 'b', 'n']);
  assert.equal(tok.vocabSize, 5);
  assert.deepEqual([...tok.encode('nab!')], [3, 1, 2, 0]);
  assert.equal(tok.decode(tok.encode('banana')), 'banana');
  assert.equal(tok.specialId('[MASK]'), 4);
  assert.equal(tok.decode([2, 4]), 'b[MASK]');
  assert.throws(() => tok.encode('bandana?'), UnsupportedOptionError);
  assert.throws(() => tok.decode([5]), UnsupportedOptionError);
  assert.throws(() => tok.specialId('[PAD]'), UnsupportedOptionError);
  assert.throws(() => new CharTokenizer(['ab']), UnsupportedOptionError);
  assert.throws(() => new CharTokenizer(['a'], { specials: ['x', 'x'] }), UnsupportedOptionError);
});

test('the shipped KJV Genesis is the documented file', () => {
  const raw = readFileSync(dataPath(SHIPPED_TEXTS['kjv-genesis'].file));
  assert.equal(raw.length, SHIPPED_TEXTS['kjv-genesis'].bytes);
  assert.equal(
    createHash('sha256').update(raw).digest('hex'),
    'e7b72bfd25d395f55a3bd0c1ada5cbf3fd627f61734d239503d834ac9b5e23b6',
  );
  const text = readShippedText('kjv-genesis');
  assert.ok(text.startsWith('In the beginning God created the heaven and the earth.\n'));
  assert.equal(text.split('\n').length - 1, 1533);
  const tok = CharTokenizer.fromText(text);
  assert.equal(tok.vocabSize, 60);
  assert.equal(tok.decode(tok.encode(text)), text);
  assert.throws(() => readShippedText('war-and-peace' as never), UnsupportedOptionError);
});
