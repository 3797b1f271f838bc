/**
 * WGSL generator for the portable dense attention tiers ('f32' everywhere, 'f16' where `shader-f16`
 * exists): FlashAttention-2's online softmax (Dao 2023, Alg. 1) with one query row per invocation and
 * key/value tiles staged in workgroup memory. Scores, running max, sum and the output accumulator are
 * f32 in both tiers; the 'f16' tier reads f16 inputs and stages them as f16, halving workgroup memory
 * and bandwidth. This is the tier that runs on Mesa's lavapipe in CI.
 */
import { FLASH_PARAMS_WGSL, SAGE_PARAMS_WGSL } from './flash-params.js';
import {
  FP4_WGSL,
  NVFP4_GROUP_WGSL,
  P_OFFSET,
  PQUANT_WGSL,
  type PQuantFormat,
  type VCodeFormat,
  nvfp4POffset,
  vDecodeWgsl,
} from './flash-wgsl-formats.js';

export interface ScalarFlashConfig {
  /** Storage type of q, k, v: 'f32', or 'f16' codes (read as f16 with shader-f16, else unpacked from u32). */
  input: 'f32' | 'f16';
  /** Use the f16 extension (f16 inputs and f16 workgroup tiles). */
  shaderF16: boolean;
  /** Head dim as stored. */
  headDim: number;
  /** Keys per staged tile. */
  blockK: number;
  /** Invocations per workgroup = query rows per workgroup. */
  workgroupSize: number;
  /**
   * Q and K as int8 codes with scales (SageAttention's INT8 QKᵀ, sageattention.md §2), multiplied four
   * at a time with `dot4I8Packed` (DP4A where the driver has it, an exact polyfill elsewhere); V keeps
   * `input`'s type. Needs a head dim that is a multiple of 4.
   */
  qkInt8?: boolean;
  /**
   * Whether WGSL's `packed_4x8_integer_dot_product` language feature is present; without it the int8
   * dot product is emulated exactly with sign-extending bit extracts.
   */
  packedDot?: boolean;
  /**
   * Float Q and K whose logits carry per-token factors, applied as the INT8 path applies its scales
   * (bindings 7–9): SageAttention's FP4 Q/K decoded to f16 (sage/fp4-operand-gpu.ts).
   */
  qkFactors?: boolean;
  /**
   * Q smoothing (SA2 §3.1, Eq. 2; SA3 Alg. 1 line 8): ΔS [B, Hq, ⌈Nq/deltaSBlock⌉, Nk] (binding 12) is
   * added to each logit times σ·log2e; deltaSBlock is the smoothing block of Q tokens.
   */
  deltaSBlock?: number;
  /**
   * P̃'s format before PV (default 'fp16': P̃ used as computed). See flash-wgsl-formats.ts. 'nvfp4'
   * quantizes each group of 16 keys from the tile's first key (blockK must be a multiple of 16).
   */
  pFormat?: 'fp16' | PQuantFormat | 'nvfp4';
  /** NVFP4 P̃ scaling (sage/p-quant.ts PScaling): 'two-level' (default) or 'direct'. */
  pScaling?: 'two-level' | 'direct';
  /**
   * V as one-byte codes with per-channel scales and mean (default: V is `input`); 'nvfp4': E2M1 codes
   * whose binding-10 scales are per 16 tokens and channel, [B, Hkv, ⌈Nk/16⌉, D], applied while staging.
   */
  vCodes?: VCodeFormat | 'nvfp4';
}

/** Largest power-of-two key tile (≤ 32) whose K and V tiles fit the workgroup memory limit. */
export function scalarBlockK(headDim: number, bytesPerElement: number, workgroupStorage: number): number {
  let bk = 32;
  while (bk > 1 && 2 * bk * headDim * bytesPerElement > workgroupStorage) bk >>= 1;
  return bk;
}

/** Finite stand-in for -inf: WGSL lets compilers assume no infinities occur in arithmetic. */
const NO_MAX = '-3.0e38';

/**
 * The pieces of the scalar kernel, shared by the dense kernel below and the block-sparse one
 * (sparse/block-sparse-wgsl-scalar.ts), which differ only in which rows a workgroup owns and which key
 * tiles it visits. Each piece is WGSL text indented for its place in `main`. Names the pieces rely on:
 * `tid`, `b`, `h`, `hk`, `row`, `valid`, `qBase`, `kvBase` (set by the caller), `q`, `acc`, `m`, `l`
 * (rowSetup and the caller), `k0` and `n` (the key tile's first key and the count of its keys this
 * row sees), `s` and `tileMax` (scores), `mNew` (update).
 */
export interface ScalarFlashParts {
  /** Everything before `fn keysSeen`: enables, the parameter block, bindings, workgroup arrays, loaders. */
  declarations: string;
  /** Declares `acc` and loads this row's q (scaled by σ·log2e, or its int8 codes and scale). */
  rowSetup: string;
  /** Stages the K and V tile starting at key `k0` into workgroup memory; keys ≥ `bound` are zeros. */
  stageTile(bound: string): string;
  /** Declares `s` and `tileMax`. */
  scoreDecl: string;
  /** Fills s[0 … n) and tileMax with the tile's logits (log2 units). */
  scoreLoop: string;
  /**
   * m' = max(m, tileMax), α = exp2(m − m'), l ← α·l, O ← α·O, then (inside `if (pvGuard)` when given)
   * P̃ = exp2(s − m'), l += P̃, O += P̃·V.
   */
  update(pvGuard?: string): string;
  /** Writes O / l (zeros and LSE −∞ when l = 0) for a row where `valid`. */
  epilogue: string;
}

export const SCALAR_NO_MAX = NO_MAX;

export function scalarFlashParts(c: ScalarFlashConfig): ScalarFlashParts {
  const { headDim: D, blockK: BK, workgroupSize: WG } = c;
  const f16Storage = c.input === 'f16' && c.shaderF16;
  const packedF16 = c.input === 'f16' && !c.shaderF16;
  const elem = c.input === 'f32' ? 'f32' : f16Storage ? 'f16' : 'u32';
  const smem = c.shaderF16 && c.input === 'f16' ? 'f16' : 'f32';
  const i8 = c.qkInt8 === true;
  // per-row and per-column logit factors: INT8 scales, or the FP4 operands' token factors
  const scaled = i8 || c.qkFactors === true;
  const dsBlock = c.deltaSBlock ?? 0;
  const pFormat = c.pFormat ?? 'fp16';
  const pOffset =
    pFormat === 'nvfp4'
      ? nvfp4POffset(c.pScaling ?? 'two-level')
      : pFormat === 'fp16'
        ? ''
        : P_OFFSET[pFormat];
  const vFp4 = c.vCodes === 'nvfp4';
  if (pFormat === 'nvfp4' && BK % 16 !== 0)
    throw new Error(`NVFP4 P needs a key tile that is a multiple of 16; got ${BK}`);
  const sageEpilogue = c.vCodes !== undefined || pFormat !== 'fp16';
  const W = D / 4; // packed int8 words per row
  // f16 codes without the extension: two per u32 word, element e in the low half when e is even
  const load = (buf: string) =>
    packedF16
      ? `fn ld${buf}(e: u32) -> f32 { let w = unpack2x16float(${buf}[e >> 1u]); return select(w.x, w.y, (e & 1u) == 1u); }`
      : `fn ld${buf}(e: u32) -> f32 { return f32(${buf}[e]); }`;
  const declarations = /* wgsl */ `${c.shaderF16 ? 'enable f16;' : ''}
${FLASH_PARAMS_WGSL}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Q: array<${i8 ? 'u32' : elem}>;
@group(0) @binding(2) var<storage, read> K: array<${i8 ? 'u32' : elem}>;
@group(0) @binding(3) var<storage, read> V: array<${c.vCodes ? 'u32' : elem}>;${
    sageEpilogue
      ? `
@group(0) @binding(10) var<storage, read> vScales: array<f32>;
@group(0) @binding(11) var<storage, read> vMean: array<f32>;`
      : ''
  }${
    dsBlock > 0
      ? `
@group(0) @binding(12) var<storage, read> DeltaS: array<f32>;`
      : ''
  }${vFp4 || pFormat === 'nvfp4' ? FP4_WGSL : ''}${
    c.vCodes
      ? (c.vCodes === 'nvfp4' ? '' : vDecodeWgsl(c.vCodes)) +
        `\nfn ldV(e: u32) -> f32 { return ${vFp4 ? 'decodeFp4' : 'decodeV'}(V[e >> 2u] >> (8u * (e & 3u))); }`
      : ''
  }${pFormat === 'nvfp4' ? NVFP4_GROUP_WGSL : pFormat !== 'fp16' ? PQUANT_WGSL[pFormat] : ''}
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
@group(0) @binding(5) var<storage, read_write> L: array<u32>; // f32 bits: -inf cannot be a WGSL constant
var<workgroup> sK: array<${i8 ? 'u32' : smem}, ${i8 ? BK * W : BK * D}>;
var<workgroup> sV: array<${smem}, ${BK * D}>;
${
  scaled
    ? `${SAGE_PARAMS_WGSL}
@group(0) @binding(7) var<storage, read> qScales: array<f32>;
@group(0) @binding(8) var<storage, read> kScales: array<f32>;
@group(0) @binding(9) var<uniform> S: SageParams;
var<workgroup> sKs: array<f32, ${BK}>;
fn groupIndex(i: u32, div: u32, mul: u32, mod8Div: u32) -> u32 {
  return (i / div) * mul + select(0u, (i % 8u) / max(mod8Div, 1u), mod8Div > 0u);
}
`
    : ''
}${
    i8
      ? `${
          c.packedDot === false
            ? `fn dotI8x4(a: u32, b: u32) -> i32 {
  var acc = 0i;
  for (var i = 0u; i < 32u; i += 8u) {
    acc += extractBits(bitcast<i32>(a), i, 8u) * extractBits(bitcast<i32>(b), i, 8u);
  }
  return acc;
}`
            : 'fn dotI8x4(a: u32, b: u32) -> i32 { return dot4I8Packed(a, b); }'
        }`
      : `${load('Q')}
${load('K')}`
  }
${c.vCodes ? '' : load('V')}`;
  const rowSetup = /* wgsl */ `  var acc: array<f32, ${D}>;${
    i8
      ? `
  // packed int8 codes of this row; element offsets are multiples of D, so of 4
  var q: array<u32, ${W}>;
  var qScale = 0.0;
  if (valid) {
    for (var w = 0u; w < ${W}u; w++) { q[w] = Q[qBase / 4u + w]; }
    qScale = qScales[(b * P.headsQ + h) * S.qGroups + groupIndex(row, S.qDiv, S.qMul, S.qMod8Div)] * S.qFactor;
  }`
      : `
  var q: array<f32, ${D}>;${
    scaled
      ? `
  var qScale = 0.0;
  if (valid) {
    for (var d = 0u; d < ${D}u; d++) { q[d] = ldQ(qBase + d); }
    qScale = qScales[(b * P.headsQ + h) * S.qGroups + groupIndex(row, S.qDiv, S.qMul, S.qMod8Div)] * S.qFactor;
  }`
      : `
  if (valid) {
    for (var d = 0u; d < ${D}u; d++) { q[d] = ldQ(qBase + d) * P.scaleLog2; }
  }`
  }`
  }${
    dsBlock > 0
      ? `
  // this row's ΔS row: its smoothing block of ${dsBlock} Q tokens
  let dsRow = ((b * P.headsQ + h) * ((P.tokensQ + ${dsBlock - 1}u) / ${dsBlock}u) + row / ${dsBlock}u) * P.tokensKv;`
      : ''
  }`;
  const stageTile = (bound: string) => /* wgsl */ `    for (var e = tid; e < ${BK * D}u; e += ${WG}u) {
      let j = k0 + e / ${D}u;
      var vx = 0.0;
      if (j < ${bound}) { vx = ldV(kvBase + j * P.kvTokenStride + e % ${D}u)${
        vFp4
          ? ` * vScales[((b * P.headsKv + hk) * ((P.tokensKv + 15u) / 16u) + j / 16u) * ${D}u + e % ${D}u]`
          : ''
      }; }
      sV[e] = ${smem}(vx);
    }${
      i8
        ? `
    for (var e = tid; e < ${BK * W}u; e += ${WG}u) {
      let j = k0 + e / ${W}u;
      sK[e] = select(0u, K[(kvBase + j * P.kvTokenStride) / 4u + e % ${W}u], j < ${bound});
    }`
        : `
    for (var e = tid; e < ${BK * D}u; e += ${WG}u) {
      let j = k0 + e / ${D}u;
      var kx = 0.0;
      if (j < ${bound}) { kx = ldK(kvBase + j * P.kvTokenStride + e % ${D}u); }
      sK[e] = ${smem}(kx);
    }`
    }${
      scaled
        ? `
    if (tid < ${BK}u) {
      let j = k0 + tid;
      sKs[tid] = select(0.0, kScales[min((b * P.headsKv + hk) * S.kGroups + groupIndex(j, S.kDiv, S.kMul, S.kMod8Div), arrayLength(&kScales) - 1u)], j < ${bound});
    }`
        : ''
    }`;
  const scoreDecl = `var s: array<f32, ${BK}>;
var tileMax = ${NO_MAX};`;
  const scoreLoop = /* wgsl */ `for (var j = 0u; j < n; j++) {${
    i8
      ? `
  var idot = 0i;
  for (var w = 0u; w < ${W}u; w++) { idot += dotI8x4(q[w], sK[j * ${W}u + w]); }
  var dot = f32(idot) * qScale * sKs[j];`
      : `
  var dot = 0.0;
  for (var d = 0u; d < ${D}u; d++) { dot += q[d] * f32(sK[j * ${D}u + d]); }${
    scaled ? `\n  dot = dot * qScale * sKs[j];` : ''
  }`
  }${
    dsBlock > 0
      ? `
  dot += DeltaS[min(dsRow + k0 + j, arrayLength(&DeltaS) - 1u)] * P.scaleLog2;`
      : ''
  }
  s[j] = dot;
  tileMax = max(tileMax, dot);
}`;
  // NVFP4 P̃ (SA3 §3.2, Alg. 1 line 10; sage/p-quant.ts): P̃ = exp2(s − m' + log2 P_r) per group of 16
  // keys from the tile's first key, group scale s = max/6 unrounded for the division and E4M3-rounded
  // for the product, as the reference does; l sums P̃ unrounded, so P_r cancels
  const pLoopFp4 = /* wgsl */ `for (var g0 = 0u; g0 < n; g0 += 16u) {
  let g1 = min(g0 + 16u, n);
  var gmax = 0.0;
  for (var j = g0; j < g1; j++) {
    s[j] = exp2(s[j] - mNew + ${pOffset});
    gmax = max(gmax, s[j]);
  }
  let gs = nvfp4Group(gmax);
  for (var j = g0; j < g1; j++) {
    l += s[j] * exp2(-${pOffset});
    let p = roundE2M1(s[j] * gs.x) * gs.y * exp2(-${pOffset});
    for (var d = 0u; d < ${D}u; d++) { acc[d] += p * f32(sV[j * ${D}u + d]); }
  }
}`;
  const pLoop =
    pFormat === 'nvfp4'
      ? pLoopFp4
      : /* wgsl */ `for (var j = 0u; j < n; j++) {${
          pFormat === 'fp16'
            ? `
  let p = exp2(s[j] - mNew);
  l += p;`
            : `
  // P̃ in [0, P_r] against the running max, rounded to ${pFormat}; l sums it unrounded (p-quant.ts)
  let pt = exp2(s[j] - mNew + ${pOffset});
  l += pt * exp2(-${pOffset});
  let p = quantP(pt) * exp2(-${pOffset});`
        }
  for (var d = 0u; d < ${D}u; d++) { acc[d] += p * f32(sV[j * ${D}u + d]); }
}`;
  const update = (pvGuard?: string) => `let mNew = max(m, tileMax);
let alpha = exp2(m - mNew);
l *= alpha;
for (var d = 0u; d < ${D}u; d++) { acc[d] *= alpha; }
${pvGuard ? `if (${pvGuard}) {\n${indent(pLoop, 2)}\n}` : pLoop}`;
  const epilogue = /* wgsl */ `  if (valid) {
    // a row that saw no key (causal, Nq > Nk) gives zeros and LSE -inf, never 0/0
    let inv = select(0.0, 1.0 / l, l > 0.0);
    ${
      sageEpilogue
        ? `let v0 = (b * P.headsKv + hk) * ${D}u;
    for (var d = 0u; d < ${D}u; d++) { O[qBase + d] = acc[d] * inv${vFp4 ? '' : ' * vScales[v0 + d]'} + vMean[v0 + d]; }`
        : `for (var d = 0u; d < ${D}u; d++) { O[qBase + d] = acc[d] * inv; }`
    }
    let lseIndex = (b * P.headsQ + h) * P.tokensQ + row;
    L[lseIndex] = select(0xff800000u, bitcast<u32>((m + log2(l)) * 0.6931471805599453), l > 0.0);
  }`;
  return { declarations, rowSetup, stageTile, scoreDecl, scoreLoop, update, epilogue };
}

/** Prefixes every non-empty line of `text` with `n` spaces. */
export function indent(text: string, n: number): string {
  const pad = ' '.repeat(n);
  return text
    .split('\n')
    .map((line) => (line.length > 0 ? pad + line : line))
    .join('\n');
}

/** WGSL of the causal key count, shared by the scalar kernels. */
export const KEYS_SEEN_WGSL = /* wgsl */ `fn keysSeen(row: i32) -> u32 {
  if (P.causal == 0u) { return P.tokensKv; }
  return u32(clamp(row + 1 + P.causalShift, 0, i32(P.tokensKv)));
}`;

export function scalarFlashWgsl(c: ScalarFlashConfig): string {
  const { blockK: BK, workgroupSize: WG } = c;
  const k = scalarFlashParts(c);
  return /* wgsl */ `${k.declarations}

${KEYS_SEEN_WGSL}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let b = wid.z;
  let h = wid.y;
  let row = wid.x * ${WG}u + tid;
  let valid = row < P.tokensQ;
  let hk = h / P.groupSize;
  let qBase = b * P.qBatchStride + h * P.qHeadStride + row * P.qTokenStride;
  let kvBase = b * P.kvBatchStride + hk * P.kvHeadStride;
${k.rowSetup}
  var m = ${NO_MAX};
  var l = 0.0;
  let kept = select(0u, keysSeen(i32(row)), valid);
  // the tile's last row sees the most keys (the causal count is nondecreasing in the row)
  let kEnd = keysSeen(i32(min(wid.x * ${WG}u + ${WG}u, P.tokensQ)) - 1);
  for (var k0 = 0u; k0 < kEnd; k0 += ${BK}u) {
    workgroupBarrier();
${k.stageTile('P.tokensKv')}
    workgroupBarrier();
    let n = min(${BK}u, kept - min(k0, kept));
    if (n > 0u) {
${indent(k.scoreDecl, 6)}
${indent(k.scoreLoop, 6)}
${indent(k.update(), 6)}
      m = mNew;
    }
  }
${k.epilogue}
}
`;
}
