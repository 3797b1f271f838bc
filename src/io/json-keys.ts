/**
 * Duplicate keys in JSON text. JSON.parse keeps the last of two equal keys without a word, so a header
 * naming one tensor twice would silently lose one entry; this scan finds such keys at any depth.
 * Imports nothing.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/** A key that occurs twice in one object; `parent` is the top-level key whose value holds that object. */
export interface DuplicateKey {
  readonly key: string;
  readonly parent: string | undefined;
}

function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/**
 * The first key that appears twice in the same object of `text`, which must be valid JSON (parse it
 * first). Keys are compared after unescaping, so "a" and "\u0061" are the same key. One linear pass.
 */
export function findDuplicateKey(text: string): DuplicateKey | undefined {
  // One entry per open container: the keys seen so far in an object, null for an array.
  const open: (Set<string> | null)[] = [];
  let topKey: string | undefined;
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      let end = i + 1;
      while (text.charCodeAt(end) !== QUOTE) end += text.charCodeAt(end) === BACKSLASH ? 2 : 1;
      const start = i;
      i = end + 1;
      const keys = open[open.length - 1];
      if (!keys) continue;
      let next = i;
      while (isJsonSpace(text.charCodeAt(next))) next++;
      if (text.charCodeAt(next) !== COLON) continue; // a string value, not a key
      const raw = text.slice(start, end + 1);
      const key = raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
      if (keys.has(key)) return { key, parent: open.length === 1 ? undefined : topKey };
      keys.add(key);
      if (open.length === 1) topKey = key;
      continue;
    }
    if (c === OPEN_OBJECT) open.push(new Set());
    else if (c === OPEN_ARRAY) open.push(null);
    else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) open.pop();
    i++;
  }
  return undefined;
}
