/**
 * safetensors files on disk (Node). Node's fs is reached through `process.getBuiltinModule` (Node ≥
 * 20.16) rather than a static import, so this module, and an index that re-exports it, still loads in
 * a browser; there only the in-memory forms work (bytes in, bytes out).
 */
import type * as NodeBuffer from 'node:buffer';
import type * as NodeCrypto from 'node:crypto';
import type * as NodeFs from 'node:fs';
import type * as NodePath from 'node:path';
import { UnsupportedOptionError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import {
  type ReadSafetensorsOptions,
  type SafetensorsContents,
  type WriteSafetensorsOptions,
  parseLabelled,
  writeSafetensors,
} from './safetensors.js';

interface NodeModules {
  buffer: typeof NodeBuffer;
  fs: typeof NodeFs;
  path: typeof NodePath;
  crypto: typeof NodeCrypto;
}

function nodeModules(what: string): NodeModules {
  const node = globalThis.process;
  if (typeof node?.getBuiltinModule !== 'function') {
    throw new UnsupportedOptionError(
      `${what} needs Node.js 20.16 or later (process.getBuiltinModule); elsewhere, read the file's ` +
        `bytes yourself and pass a Uint8Array or ArrayBuffer`,
    );
  }
  return {
    buffer: node.getBuiltinModule('node:buffer'),
    fs: node.getBuiltinModule('node:fs'),
    path: node.getBuiltinModule('node:path'),
    crypto: node.getBuiltinModule('node:crypto'),
  };
}

/**
 * Reads a safetensors file: a path (read with node:fs), or its bytes (Uint8Array or ArrayBuffer, as
 * parseSafetensors). A path's contents go into a buffer of their own, so aligned tensors are views of
 * it (zero-copy) unless `opts.copy`. Errors for a malformed file are MalformedFileError and start with
 * the path; a missing file is Node's ENOENT error.
 */
export function readSafetensors(
  source: Uint8Array | ArrayBuffer | string,
  opts: ReadSafetensorsOptions = {},
): SafetensorsContents {
  if (typeof source !== 'string') return parseLabelled(source, opts, 'safetensors');
  return parseLabelled(readWholeFile(source), opts, `safetensors file ${source}`);
}

/**
 * Writes `tensors` as a safetensors file at `file` (bytes as writeSafetensors). Atomic: the bytes go
 * to a temporary file in the same folder, are flushed to disk, and the temporary file is renamed over
 * `file`, so a reader sees the old file or the new one, never a partial one.
 */
export function writeSafetensorsFile(
  file: string,
  tensors: Record<string, Tensor>,
  opts: WriteSafetensorsOptions = {},
): void {
  const bytes = writeSafetensors(tensors, opts);
  const { fs, path, crypto } = nodeModules('writing a safetensors file');
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${crypto.randomUUID()}.tmp`);
  let renamed = false;
  try {
    const fd = fs.openSync(temporary, 'wx');
    try {
      for (let written = 0; written < bytes.length;) {
        written += fs.writeSync(fd, bytes, written, bytes.length - written);
      }
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temporary, file);
    renamed = true;
  } finally {
    if (!renamed) fs.rmSync(temporary, { force: true });
  }
}

/** A file's bytes in a fresh buffer (not Node's shared pool), so tensors may view it. */
function readWholeFile(file: string): Uint8Array {
  const { buffer, fs } = nodeModules('reading a safetensors file from a path');
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const limit = buffer.constants.MAX_LENGTH;
    if (size > limit) {
      throw new UnsupportedOptionError(
        `safetensors file ${file} is ${size} bytes; this Node.js holds at most ${limit} bytes in one buffer`,
      );
    }
    const bytes = new Uint8Array(size);
    let read = 0;
    while (read < size) {
      const n = fs.readSync(fd, bytes, read, size - read, read);
      if (n === 0) break; // the file shrank while being read; parsing reports what is missing
      read += n;
    }
    return bytes.subarray(0, read);
  } finally {
    fs.closeSync(fd);
  }
}
