/**
 * A character-level tokenizer: one id per distinct character of an alphabet (sorted by code point,
 * so the same text always gives the same ids), optionally followed by special tokens (e.g. a
 * masked-diffusion LM's [MASK]) that no text encodes to. Character-level modelling keeps the
 * vocabulary tiny (60 symbols for the shipped KJV Genesis), which is what a float64 CPU transformer
 * can afford (training_methods.md §2.4: "character-level").
 */
import { UnsupportedOptionError } from '../core/errors.js';

export interface CharTokenizerOptions {
  /** Names of extra tokens with ids after the characters', in order (default none). */
  readonly specials?: readonly string[];
}

export class CharTokenizer {
  /** The characters, id order. */
  readonly alphabet: readonly string[];
  readonly specials: readonly string[];
  private readonly ids: Map<string, number>;

  /** A tokenizer over the distinct characters of `text` (code points, sorted). */
  static fromText(text: string, opts: CharTokenizerOptions = {}): CharTokenizer {
    return new CharTokenizer([...new Set(text)], opts);
  }

  constructor(characters: readonly string[], opts: CharTokenizerOptions = {}) {
    const chars = [...new Set(characters)].sort((a, b) => a.codePointAt(0)! - b.codePointAt(0)!);
    for (const c of chars) {
      if ([...c].length !== 1) {
        throw new UnsupportedOptionError(
          `CharTokenizer characters must be single code points; got ${JSON.stringify(c)}`,
        );
      }
    }
    this.alphabet = chars;
    this.specials = [...(opts.specials ?? [])];
    if (new Set(this.specials).size !== this.specials.length) {
      throw new UnsupportedOptionError(
        `CharTokenizer specials must be distinct; got ${this.specials.join(', ')}`,
      );
    }
    this.ids = new Map(chars.map((c, i) => [c, i]));
  }

  /** Characters plus specials. */
  get vocabSize(): number {
    return this.alphabet.length + this.specials.length;
  }

  /** The id of special token `name`. */
  specialId(name: string): number {
    const i = this.specials.indexOf(name);
    if (i < 0) {
      throw new UnsupportedOptionError(
        `no special token ${JSON.stringify(name)}; this tokenizer has ${this.specials.map((s) => JSON.stringify(s)).join(', ') || 'none'}`,
      );
    }
    return this.alphabet.length + i;
  }

  /** Ids of `text`'s characters; a character outside the alphabet is an UnsupportedOptionError. */
  encode(text: string): Int32Array {
    const chars = [...text];
    const out = new Int32Array(chars.length);
    chars.forEach((c, i) => {
      const id = this.ids.get(c);
      if (id === undefined) {
        throw new UnsupportedOptionError(
          `character ${JSON.stringify(c)} (position ${i}) is not in the tokenizer's ${this.alphabet.length}-character alphabet; build it from text that contains it`,
        );
      }
      out[i] = id;
    });
    return out;
  }

  /** The text of `ids`; specials decode as their names. */
  decode(ids: ArrayLike<number>): string {
    let s = '';
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new UnsupportedOptionError(
          `token id ${id} (position ${i}) is outside 0..${this.vocabSize - 1}`,
        );
      }
      s += id < this.alphabet.length ? this.alphabet[id] : this.specials[id - this.alphabet.length];
    }
    return s;
  }
}
