#!/usr/bin/env python3
"""Generate the ml_dtypes reference fixtures for sparq's number formats (src/numerics/).

sparq's `encode(format, Float32Array)` must give exactly the codes of
`np.asarray(x, np.float32).astype(T)` where T is `np.float16` for 'float16' (numpy's own half type)
and `ml_dtypes.<format>` for the others; `decode` must give exactly `codes.view(T).astype(np.float32)`.
CI has no Python, so this script's output is committed under test/fixtures/numerics/ and read by
test/numerics/*.test.ts. Re-run it (from the repo root) only to regenerate:

    python3 tools/gen-numerics-fixtures.py          # needs numpy and ml_dtypes (pinned: 0.6.0)

Output files (all little-endian; *.gz are gzip streams, read with node:zlib gunzipSync):

random-inputs.bin.gz
    RANDOM_COUNT float32 inputs as uint32 bit patterns, shared by every format: 8000 uniform 32-bit
    patterns (so NaNs with random payloads, infinities and float32 subnormals all occur), 10000
    with a uniform sign and mantissa and an unbiased exponent in [-30, 20] (the range of the
    small formats), and 2000 with a biased exponent in [0, 4] (float32 subnormals and the
    smallest normals, where bfloat16 and float8_e8m0fnu have special cases).

<format>.bin.gz, three sections back to back, at the byte offsets given in <format>.json:
    decode  2**bits uint32: the float32 bit pattern ml_dtypes decodes each code to, code order.
    ties    codeBytes-wide unsigned codes (uint8, or uint16 for 16-bit formats). Take the finite
            values of the decode table, drop duplicates (the two zeros), sort ascending; for each
            pair of neighbours (a, b) the tie point m = (a + b) / 2 is exactly a float32 (checked
            here). The section holds the codes of [nextDown(m), m, nextUp(m)] for every pair in
            ascending order, nextDown/nextUp being the adjacent float32 values
            (np.nextafter). The inputs are not stored: tests rebuild them from the decode table.
    random  codeBytes-wide codes of random-inputs, in order.

<format>.json
    format, bits, codeBytes, mlDtypesVersion, numpyVersion, sections ({name: [byteOffset,
    count]}), finfo (ml_dtypes.finfo's max, smallest_normal, smallest_subnormal), specials (a list of {label, input: float32 bits as "0x%08x", code}: ±0, ±inf, NaNs
    with several payloads, ±max, the overflow tie max + ulp(max)/2 and its neighbours, ±2·max,
    ±float32 max, float32 subnormal boundaries, the format's own subnormal and normal
    boundaries, ...) and roundtripExceptions ([code, ml_dtypes code of the decoded value] for
    every code that does not survive decode-then-encode, i.e. NaN codes that canonicalise).
"""

import gzip
import json
import os

import ml_dtypes
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'numerics')
RANDOM_COUNT = 20000
SEED = 20240601

FORMATS = {
    'float16': (np.float16, 16),
    'bfloat16': (ml_dtypes.bfloat16, 16),
    'float8_e4m3fn': (ml_dtypes.float8_e4m3fn, 8),
    'float8_e5m2': (ml_dtypes.float8_e5m2, 8),
    'float4_e2m1fn': (ml_dtypes.float4_e2m1fn, 4),
    'float8_e8m0fnu': (ml_dtypes.float8_e8m0fnu, 8),
}


def f32(x):
    return np.float32(x)


def bits_of(x):
    return int(np.array([x], dtype=np.float32).view(np.uint32)[0])


def from_bits(b):
    return np.array([b], dtype=np.uint32).view(np.float32)[0]


def encode(t, xs_bits):
    """ml_dtypes (numpy for float16) codes of float32 inputs given as uint32 bit patterns."""
    xs = np.asarray(xs_bits, dtype=np.uint32).view(np.float32)
    y = xs.astype(t)
    return y.view(np.uint16 if y.dtype.itemsize == 2 else np.uint8).astype(np.uint32)


def decode_table(t, bits):
    storage = np.uint16 if bits == 16 else np.uint8
    codes = np.arange(2**bits, dtype=storage)
    return codes.view(t).astype(np.float32).view(np.uint32)


def random_inputs():
    rng = np.random.default_rng(SEED)
    uniform = rng.integers(0, 2**32, size=8000, dtype=np.uint64).astype(np.uint32)

    def patterns(n, lo, hi):
        sign = rng.integers(0, 2, size=n, dtype=np.uint64) << 31
        exp = rng.integers(lo, hi + 1, size=n, dtype=np.uint64) << 23
        mant = rng.integers(0, 2**23, size=n, dtype=np.uint64)
        return (sign | exp | mant).astype(np.uint32)

    in_range = patterns(10000, 127 - 30, 127 + 20)
    tiny = patterns(RANDOM_COUNT - 18000, 0, 4)
    return np.concatenate([uniform, in_range, tiny])


def tie_inputs(finite_values):
    vals = np.unique(finite_values.astype(np.float64))
    inputs = []
    for a, b in zip(vals[:-1], vals[1:]):
        m = (a + b) / 2
        m32 = f32(m)
        assert float(m32) == m, f'tie point {m} between {a} and {b} is not a float32'
        inputs += [np.nextafter(m32, f32(-np.inf)), m32, np.nextafter(m32, f32(np.inf))]
    return np.array(inputs, dtype=np.float32).view(np.uint32)


def specials(t, bits, finite_values):
    fi = ml_dtypes.finfo(t)
    mx = float(fi.max)
    top = np.sort(np.unique(finite_values.astype(np.float64)))
    below_max = top[-2]
    ulp = mx - below_max
    if np.log2(mx) == np.floor(np.log2(mx)):
        # float8_e8m0fnu: max is a power of two and the would-be next value is 2·max.
        ulp = mx
    tiny = float(fi.smallest_subnormal)
    normal = float(fi.smallest_normal)
    pos = [
        ('zero', 0.0),
        ('one', 1.0),
        ('max', mx),
        ('overflow tie max + ulp/2', mx + ulp / 2),
        ('2·max', 2 * mx),
        ('float32 max', float(np.finfo(np.float32).max)),
        ('1e38', 1e38),
        ('smallest positive', tiny),
        ('half smallest positive (tie with zero)', tiny / 2),
        ('quarter smallest positive', tiny / 4),
        ('1.5 × smallest positive', tiny * 1.5),
        ('smallest positive × 2^-20', tiny * 2.0**-20),
        ('smallest normal', normal),
        ('largest subnormal', normal - tiny if normal > tiny else normal),
        ('tie largest subnormal / smallest normal', normal - tiny / 2),
    ]
    labelled = []
    for label, v in pos:
        v32 = f32(v)
        if not np.isfinite(v32):
            continue
        for sgn, name in ((1, '+'), (-1, '-')):
            x = f32(sgn * v32)
            labelled.append((f'{name}{label}', bits_of(x)))
            if v != 0:
                labelled.append((f'{name}{label}, next float32 toward 0', bits_of(np.nextafter(x, f32(0)))))
                labelled.append(
                    (f'{name}{label}, next float32 away from 0', bits_of(np.nextafter(x, f32(sgn * np.inf))))
                )
    raw = [
        ('+inf', 0x7F800000),
        ('-inf', 0xFF800000),
        ('+NaN quiet', 0x7FC00000),
        ('-NaN quiet', 0xFFC00000),
        ('+NaN signalling payload 1', 0x7F800001),
        ('+NaN payload 0x200000', 0x7FA00000),
        ('+NaN all ones', 0x7FFFFFFF),
        ('+NaN payload 0x2000', 0x7F802000),
        ('+NaN payload 0x1fff', 0x7F801FFF),
        ('-NaN payload 0x12345', 0xFF812345),
        ('+float32 smallest subnormal', 0x00000001),
        ('-float32 smallest subnormal', 0x80000001),
        ('+float32 subnormal 2', 0x00000002),
        ('+float32 2^-128 - ulp', 0x001FFFFF),
        ('+float32 2^-128', 0x00200000),
        ('+float32 2^-127 - ulp', 0x003FFFFF),
        ('+float32 2^-127', 0x00400000),
        ('+float32 2^-127 + ulp', 0x00400001),
        ('+float32 1.5·2^-127 - ulp', 0x005FFFFF),
        ('+float32 1.5·2^-127', 0x00600000),
        ('+float32 1.5·2^-127 + ulp', 0x00600001),
        ('+float32 largest subnormal', 0x007FFFFF),
        ('-float32 largest subnormal', 0x807FFFFF),
        ('+float32 smallest normal', 0x00800000),
        ('-float32 smallest normal', 0x80800000),
        ('+float32 1.5·2^-126', 0x00C00000),
    ]
    seen = set()
    out = []
    for label, b in labelled + raw:
        if b in seen:
            continue
        seen.add(b)
        out.append((label, b))
    codes = encode(t, [b for _, b in out])
    return [{'label': label, 'input': f'0x{b:08x}', 'code': int(c)} for (label, b), c in zip(out, codes)]


def main():
    # Overflowing casts and nextafter past float32 max are intended inputs, not accidents.
    np.seterr(all='ignore')
    os.makedirs(OUT, exist_ok=True)
    rand = random_inputs()
    with gzip.GzipFile(os.path.join(OUT, 'random-inputs.bin.gz'), 'wb', mtime=0) as f:
        f.write(rand.astype('<u4').tobytes())

    for name, (t, bits) in FORMATS.items():
        code_bytes = 2 if bits == 16 else 1
        code_dtype = '<u2' if bits == 16 else 'u1'
        dec = decode_table(t, bits)
        values = dec.view(np.float32)
        finite = values[np.isfinite(values)]

        ties = encode(t, tie_inputs(finite))
        rcodes = encode(t, rand)
        roundtrip = encode(t, dec)
        exceptions = [[c, int(r)] for c, r in enumerate(roundtrip) if r != c]

        sections = {}
        blob = b''
        for sec, arr in (('decode', dec.astype('<u4')), ('ties', ties.astype(code_dtype)), ('random', rcodes.astype(code_dtype))):
            sections[sec] = [len(blob), int(arr.size)]
            blob += arr.tobytes()
        with gzip.GzipFile(os.path.join(OUT, f'{name}.bin.gz'), 'wb', mtime=0) as f:
            f.write(blob)

        meta = {
            'format': name,
            'bits': bits,
            'codeBytes': code_bytes,
            'mlDtypesVersion': ml_dtypes.__version__,
            'numpyVersion': np.__version__,
            'randomCount': RANDOM_COUNT,
            'finfo': {
                'max': float(ml_dtypes.finfo(t).max),
                'smallestNormal': float(ml_dtypes.finfo(t).smallest_normal),
                'smallestSubnormal': float(ml_dtypes.finfo(t).smallest_subnormal),
            },
            'sections': sections,
            'specials': specials(t, bits, finite),
            'roundtripExceptions': exceptions,
        }
        with open(os.path.join(OUT, f'{name}.json'), 'w') as f:
            json.dump(meta, f, indent=1)
            f.write('\n')
        print(f'{name}: {len(finite)} finite codes, {sections["ties"][1]} tie inputs, '
              f'{len(meta["specials"])} specials, {len(exceptions)} roundtrip exceptions')


if __name__ == '__main__':
    main()
