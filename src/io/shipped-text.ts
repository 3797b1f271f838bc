/**
 * Public-domain texts shipped in the repository's `data/` folder (provenance and licence in
 * data/README.md), read from disk relative to this module so they work from a clean clone and from
 * the built `dist/` alike — nothing is downloaded.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UnsupportedOptionError } from '../core/errors.js';

export interface ShippedText {
  readonly file: string;
  readonly title: string;
  /** Where it came from and why it may be shipped. */
  readonly provenance: string;
  readonly bytes: number;
}

export const SHIPPED_TEXTS = {
  'kjv-genesis': {
    file: 'kjv-genesis.txt',
    title: 'The Book of Genesis, King James Version (1611), one verse per line',
    provenance:
      "Debian package bible-kjv-text 4.38, decoded with bible-kjv's `bible -f gen1:1-gen50:26`, verse references removed; public domain (outside the UK's Crown letters patent)",
    bytes: 196818,
  },
} as const satisfies Record<string, ShippedText>;

export type ShippedTextName = keyof typeof SHIPPED_TEXTS;

/** Absolute path of a file in the repository's data/ folder (src/io and dist/io are both two levels down). */
export function dataPath(file: string): string {
  return fileURLToPath(new URL(`../../data/${file}`, import.meta.url));
}

/** The full text of a shipped corpus. */
export function readShippedText(name: ShippedTextName): string {
  const entry = (SHIPPED_TEXTS as Record<string, ShippedText>)[name] as ShippedText | undefined;
  if (entry === undefined) {
    throw new UnsupportedOptionError(
      `no shipped text named ${JSON.stringify(name)}; there are ${Object.keys(SHIPPED_TEXTS).join(', ')}`,
    );
  }
  return readFileSync(dataPath(entry.file), 'utf8');
}
