/**
 * WGSL generator for the tensor-core dense attention tier: FlashAttention-2 (Dao 2023, Alg. 1) with
 * S = QKᵀ and O += PV on f16 subgroup matrices with f32 results (Dawn's
 * `chromium_experimental_subgroup_matrix`, 16×16×16, which NVIDIA's Vulkan driver lowers to warp MMA).
 *
 * What differs from a CUDA FlashAttention, and why:
 * - Subgroup matrices are opaque: a lane cannot read or scale one element of S or O. So S goes through
 *   workgroup memory (store, per-row softmax on lanes, P written back as f16 and loaded as a left
 *   matrix), and per-row rescaling of O cannot happen in registers.
 * - Hence lazy rescaling: each row keeps a reference max m_ref and P = exp2(s − m_ref). m_ref only moves
 *   when the row max exceeds it by more than `tau` (log2 units), which bounds P by 2^tau (exact in f16)
 *   and is rare after the first key tile. When any row of the workgroup moves, the whole workgroup
 *   stores its O matrices to a scratch buffer, scales rows there and loads them back (a uniform branch,
 *   since barriers need workgroup-uniform control flow). The final O / l goes through the same scratch.
 *   Algebraically this is exact: O and l always share the row's reference.
 * - K/V tiles are staged global → registers → workgroup memory (WGSL has no async copy), with the next
 *   tile's global loads issued before the current tile's math (single buffer plus register prefetch,
 *   the fastest scheme measured for WGSL GEMMs on the H100, shared/research/webgpu_gemm_h100.md).
 * - Workgroup arrays are vec4<u32> with rows padded by 16 bytes, and every subgroup-matrix variable has
 *   a constant name (straight-line code): both measured to matter 1.6× for GEMMs on the H100.
 */
import { UnsupportedOptionError } from '../core/errors.js';
import { FLASH_PARAMS_WGSL, SAGE_PARAMS_WGSL } from './flash-params.js';
import {
  FP4_WGSL,
  NVFP4_GROUP_WGSL,
  P_OFFSET,
  PQUANT_WGSL,
  V2_DECODE_WGSL,
  type VCodeFormat,
  nvfp4POffset,
  vDecodeWgsl,
} from './flash-wgsl-formats.js';

export interface MmaFlashConfig {
  /** Head dim as stored: a multiple of 16. */
  headDim: number;
  /** Subgroups per workgroup. */
  warps: number;
  /** Query rows per subgroup: 16 or 32 (two or one lanes per row in the softmax). */
  rowsPerWarp: 16 | 32;
  /** Keys per staged tile: a multiple of 16 (48 fits D = 128 tiles into 48 KiB of workgroup memory). */
  blockK: 16 | 32 | 48 | 64;
  /**
   * Write P into the workgroup rows that held S instead of a separate array. Each lane writes its f16
   * P values inside the bytes of its own f32 S chunk (after reading that chunk into registers), so no
   * lane can overwrite S another lane has yet to read; saves BQ·BK·2 bytes of workgroup memory.
   */
  aliasP: boolean;
  /**
   * How K/V tiles reach workgroup memory. 'prefetch': the next tile's global loads are issued into
   * registers before this tile's math and stored after the next barrier (4 barriers a tile).
   * 'direct': load and store at the top of the tile (fewer live registers, latency exposed).
   * 'split': K and V staged at different points, V during the S phase and the next K after the S
   * barrier, so one barrier a tile disappears and only half the prefetch registers are live at once.
   */
  staging: 'prefetch' | 'direct' | 'split';
  /**
   * Q and K operands: 'f16' (dense attention) or 'i8' codes with scales (SageAttention's INT8 QKᵀ on
   * i8×i8→i32 16×16×32 subgroup matrices; sageattention.md §2: S = S_int32·δ_Q(row)·δ_K(col)).
   */
  qk: 'f16' | 'i8';
  /**
   * Per-row and per-column logit factors S·δ_Q(row)·δ_K(col) (bindings 7–9; default: qk === 'i8'):
   * INT8 scales, or the per-token factors of FP4 Q/K decoded to f16 (sage/fp4-operand-gpu.ts).
   */
  qkScales?: boolean;
  /**
   * Q smoothing (SA2 §3.1, Eq. 2; SA3 Alg. 1 line 8): the smoothing block of Q tokens whose ΔS row
   * [B, Hq, ⌈Nq/block⌉, Nk] (binding 12) is added to each logit times σ·log2e; 0 or absent: none.
   */
  deltaSBlock?: number;
  /**
   * Where the softmax reads ΔS (default 'workgroup'): 'workgroup' stages the workgroup's ΔS rows for
   * the key tile in workgroup memory once per tile (one f32 per row block and key, read back as
   * vec4), 'global' reads every element from storage inside the softmax (16 scalar loads per lane
   * and tile at blockK 32, on the critical path of the row max). Both read the same values and form
   * the logit with the same expression; 'global' is kept for A/B benchmarks and the block-sparse
   * kernel, whose row chunks need not start at a multiple of the smoothing block.
   */
  deltaSStaging?: 'workgroup' | 'global';
  /**
   * Format P̃ is rounded to before PV (SageAttention; dense attention: 'fp16' straight from exp2). P̃ is
   * formed against the exact running row max as the reference does (P̃ = exp2(s − m + offset),
   * p-quant.ts), rounded, then multiplied into the lazily rescaled frame of O in f16. 'nvfp4' rounds
   * each group of 16 keys (SA3 §3.2): a lane's chunk of the row holds one or more whole groups, or,
   * with 8-key chunks, half of one whose max is shared with the neighbouring lane.
   */
  pFormat: 'fp16' | 'float8_e4m3fn' | 'float8_e5m2' | 'int8' | 'nvfp4';
  /** NVFP4 P̃'s scaling (sage/p-quant.ts PScaling): 'two-level' (default) or 'direct'. */
  pScaling?: 'two-level' | 'direct';
  /**
   * V's storage: f16 values, or FP8/INT8 codes decoded to f16 (exactly) while staging, with a
   * per-channel scale and optional token mean applied to O at the end (sageattention.md §4.4), or
   * NVFP4 codes whose scales per 16 tokens and channel ([B, Hkv, ⌈Nk/16⌉, D], binding 10) are applied
   * while staging (code·scale is exact in f16, flash-wgsl-formats.ts FP4_WGSL).
   */
  vFormat: 'f16' | 'float8_e4m3fn' | 'float8_e5m2' | 'int8' | 'nvfp4';
  /** Advance all S accumulators of a tile together (independent MMA chains) rather than one at a time. */
  interleaveS: boolean;
  /**
   * Ablations for benchmarks only, which make the output WRONG: 'no-softmax' writes a constant P
   * without reading S or computing exponentials; 'no-staging' skips the global loads and workgroup
   * stores of K and V tiles. They measure what each part of a key tile costs.
   */
  ablate?: 'no-softmax' | 'no-staging';
  /** Keep Q's fragments in registers for the whole key loop (else reload them from global each tile). */
  qInRegisters: boolean;
  /**
   * Rescale threshold in log2 units: P ≤ 2^tau in f16 (so at most 15). Each rescale stores and reloads
   * the workgroup's O matrices, so a large tau keeps them rare even for wide logit ranges: with
   * tau = 8, SageAttention kernels on logits of std ≈ 6 (log2 units) ran 3–4× slower on the H100.
   */
  tau: number;
  /** Subgroup size the lane mapping assumes (32 on NVIDIA). */
  subgroupSize: 32;
}

export const DEFAULT_MMA_CONFIG: Omit<MmaFlashConfig, 'headDim'> = Object.freeze({
  warps: 8,
  rowsPerWarp: 16,
  blockK: 32,
  qInRegisters: true,
  tau: 15,
  subgroupSize: 32,
  aliasP: false,
  interleaveS: true,
  staging: 'prefetch',
  qk: 'f16',
  pFormat: 'fp16',
  vFormat: 'f16',
});

/**
 * Tile defaults by head dim, from the sweeps on an NVIDIA H100 through Dawn/Vulkan (BENCHMARKS.md):
 * D ≤ 64: 12 warps with register prefetch (110 / 102 TFLOPS non-causal / causal at N = 16k);
 * D > 64: 8 warps with direct staging (122 / 128). P lives in the S rows in both. Where the K/V tiles
 * of a large head dim would not fit `workgroupStorage` bytes, the key tile shrinks to 16.
 */
export function defaultMmaConfig(headDim: number, workgroupStorage = 49152): MmaFlashConfig {
  const tuned: Partial<MmaFlashConfig> =
    headDim <= 64
      ? { warps: 12, staging: 'prefetch', aliasP: true }
      : { warps: 8, staging: 'direct', aliasP: true };
  const cfg: MmaFlashConfig = { ...DEFAULT_MMA_CONFIG, ...tuned, headDim };
  return mmaWorkgroupBytes(cfg) <= workgroupStorage ? cfg : { ...cfg, blockK: 16 };
}

/** Workgroup memory the kernel declares, in bytes (to check against the device limit). */
export function mmaWorkgroupBytes(c: MmaFlashConfig): number {
  const bq = c.warps * c.rowsPerWarp;
  const vRow = c.headDim / 8 + 1;
  const kRow = (c.qk === 'i8' ? c.headDim / 16 : c.headDim / 8) + 1;
  const kScales = (c.qkScales ?? c.qk === 'i8') ? 4 * c.blockK : 0;
  return (
    16 * (c.blockK * (kRow + vRow) + bq * (c.blockK / 4 + 1) + (c.aliasP ? 0 : bq * (c.blockK / 8 + 1))) +
    4 +
    kScales +
    4 * c.blockK * stagedDeltaSRows(c)
  );
}

/**
 * ΔS rows a dense workgroup stages per key tile (0: ΔS not staged): the most smoothing blocks that
 * BQ consecutive rows starting at a multiple of BQ can touch.
 */
function stagedDeltaSRows(c: MmaFlashConfig, sparse = false): number {
  const block = c.deltaSBlock ?? 0;
  if (block <= 0 || sparse || (c.deltaSStaging ?? 'workgroup') !== 'workgroup') return 0;
  const bq = mmaBlockQ(c);
  let rows = 0;
  // q0 mod block runs over the multiples of gcd(bq, block)
  for (let r = 0; r < block; r += gcd(bq, block)) rows = Math.max(rows, Math.floor((r + bq - 1) / block) + 1);
  return rows;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** Query rows per workgroup. */
export function mmaBlockQ(c: MmaFlashConfig): number {
  return c.warps * c.rowsPerWarp;
}

/**
 * What turns the dense kernel into the block-sparse one (sparse/block-sparse-wgsl-mma.ts): the layout
 * declarations, which must provide `layoutSet(b, h)`, `queryBounds(set, i)`, `rowRange(set, i)`,
 * `keyBounds(set, col)` (each a vec2<u32> range), the layout words `LW` with the column offset
 * `SP.colOff`, and, with stage 2, `pvThreshold(h)`, `SP.exemptLast` and the counters `pvCounts`
 * (sparse/block-sparse-wgsl-layout.ts). The kernel then runs one workgroup per (b, h, query block):
 * the block's rows in chunks of the workgroup's rows, and for each chunk the key tiles of its kept
 * blocks in CSR order, bounds-masked at each block's end.
 */
export interface MmaBlockSparse {
  declarations: string;
  /** Rows per stage-2 group (a multiple of rowsPerWarp dividing the workgroup's rows); 0: no stage 2. */
  pvGroupRows: number;
}

export function mmaFlashWgsl(c: MmaFlashConfig, sparse?: MmaBlockSparse): string {
  const D = c.headDim;
  const W = c.warps;
  const WQ = c.rowsPerWarp;
  const BK = c.blockK;
  const T = W * c.subgroupSize;
  const BQ = W * WQ;
  const LPR = c.subgroupSize / WQ; // lanes per row in the softmax
  const i8 = c.qk === 'i8';
  // logits times per-row and per-column factors: INT8 scales, or FP4 Q/K token factors
  const scaled = c.qkScales ?? i8;
  if (c.staging === 'split' && scaled) {
    // split staging stores the next tile's K (and its per-key scales in sKs) after the S barrier, while
    // this tile's softmax still reads sKs: a race. Only the tile sweeps ask for it; refuse rather than
    // emit a kernel that may read the wrong tile's scales.
    throw new UnsupportedOptionError(
      "staging 'split' cannot be combined with per-key Q/K scales (INT8 or scaled FP4 logits); use 'prefetch' or 'direct'",
    );
  }
  const dsBlock = c.deltaSBlock ?? 0;
  // ΔS rows staged per key tile in workgroup memory (0: read from storage in the softmax)
  const dsRows = stagedDeltaSRows(c, sparse !== undefined);
  const vFp4 = c.vFormat === 'nvfp4';
  const pFp4 = c.pFormat === 'nvfp4';
  // vec4<u32> per row of data: 8 f16 or 16 int8 codes each; tile rows padded by 16 bytes
  const vCodes = c.vFormat !== 'f16';
  const RSDV = D / 8; // f16 row in workgroup memory
  const RSV = RSDV + 1;
  const RSGV = vCodes ? D / 16 : D / 8; // V row in global memory (codes are one byte)
  const RSDK = i8 ? D / 16 : D / 8;
  const RSK = RSDK + 1;
  const SS = BK / 4 + 1; // S scratch row stride, vec4<f32>
  // P: its own array (row stride BK/8 + 1 vec4), or inside the S rows at CH f16 past each row start,
  // which puts part p's P bytes [2·CH·(p+1), 2·CH·(p+2)) inside part p's S bytes [4·CH·p, 4·CH·(p+1))
  const PS = c.aliasP ? BK / 4 + 1 : BK / 8 + 1;
  const pArray = c.aliasP ? 'sS' : 'sP';
  const CH = BK / LPR; // S columns per lane
  const pBase = c.aliasP ? CH / 8 : 0; // vec4 offset of P within a row
  const DC = D / LPR; // O columns per lane in the epilogue
  const nQ = WQ / 16;
  const nD = D / 16;
  const nDk = i8 ? D / 32 : D / 16; // 16×16×32 i8 or 16×16×16 f16 steps along the head dim
  const nK = BK / 16;
  const loads = { K: Math.ceil((BK * RSDK) / T), V: Math.ceil((BK * RSGV) / T) };
  const rowVec = { K: RSDK, V: RSGV };
  const rowStride = { K: RSK, V: RSV };
  if (D % (i8 ? 32 : 16) !== 0 || BK % 16 !== 0 || CH % 8 !== 0)
    throw new Error(`bad MMA flash config ${JSON.stringify(c)}`);
  // NVFP4 P: each 16-key group within one lane's chunk, or split over the two lanes of a row
  if (pFp4 && CH % 16 !== 0 && !(CH === 8 && LPR === 2))
    throw new Error(
      `NVFP4 P needs lane chunks of whole 16-key groups (or 8 keys on two lanes); got ${JSON.stringify(c)}`,
    );

  const G = sparse?.pvGroupRows ?? 0;
  const pv = G > 0;
  if (pv && (BQ % G !== 0 || G % WQ !== 0))
    throw new Error(`stage-2 groups of ${G} rows must divide ${BQ} rows and be a multiple of ${WQ}`);
  const L = 'subgroup_matrix_left<f16, 16, 16>';
  const R = 'subgroup_matrix_right<f16, 16, 16>';
  const A = 'subgroup_matrix_result<f32, 16, 16>';
  const LQ = i8 ? 'subgroup_matrix_left<i8, 32, 16>' : L;
  const RK = i8 ? 'subgroup_matrix_right<i8, 16, 32>' : R;
  const AS = i8 ? 'subgroup_matrix_result<i32, 16, 16>' : A;
  const sElem = i8 ? 'vec4<i32>' : 'vec4<f32>';
  const lines: string[] = [];
  const emit = (s: string) => lines.push(s);

  // --- fragments of Q: q_{qi}_{dd}
  const qFrag = (qi: number, dd: number) => `q_${qi}_${dd}`;
  const loadQ = (qi: number, dd: number, decl: boolean) =>
    `${decl ? 'var ' : ''}${qFrag(qi, dd)}${decl ? `: ${LQ}` : ''} = subgroupMatrixLoad<${LQ}, row_major>(&Qv, qRow0 + ${qi * 16}u * qTok + ${dd * 2}u, qTok);`;

  // --- K/V staging: loads into registers pk*/pv*, stores from them
  const staging = c.ablate !== 'no-staging';
  const which = (kv: 'K' | 'V' | 'KV') => (kv === 'KV' ? (['K', 'V'] as const) : ([kv] as const));
  // `bound`: keys at or past it are zeros (the sequence end, or in the sparse kernel the block's end)
  const loadTile = (tileExpr: string, kv: 'K' | 'V' | 'KV', bound = 'P.tokensKv') => {
    for (const x of which(kv)) {
      for (let i = 0; i < (staging ? loads[x] : 0); i++) {
        const n = rowVec[x];
        emit(`    {
      let e = tid + ${i * T}u;
      let j = ${tileExpr} + e / ${n}u;
      let ok = e < ${BK * n}u && j < ${bound};
      let src = ${x.toLowerCase()}Base + j * ${x.toLowerCase()}Tok + e % ${n}u;
      p${x.toLowerCase()}${i} = select(vec4<u32>(), ${x}v[min(src, arrayLength(&${x}v) - 1u)], ok);
    }`);
      }
    }
  };
  const storeTile = (kv: 'K' | 'V' | 'KV', tileK: string, bound = 'P.tokensKv') => {
    for (const x of which(kv)) {
      for (let i = 0; i < (staging ? loads[x] : 0); i++) {
        const n = rowVec[x];
        if (x === 'V' && vFp4) {
          // 16 NVFP4 codes of one token (channels 16c…16c+15) times their group scales → 16 f16 values
          // (exact); masked keys are codes 0, so their values are 0 whatever scale the clamped index reads
          emit(`    {
      let e = tid + ${i * T}u;
      if (e < ${BK * n}u) {
        let dst = (e / ${n}u) * ${RSV}u + (e % ${n}u) * 2u;
        let j = ${tileK} + e / ${n}u;
        let s0 = min(((b * P.headsKv + hk) * ((P.tokensKv + 15u) / 16u) + j / 16u) * ${D / 4}u + (e % ${n}u) * 4u, arrayLength(&vScales4) - 4u);
        let sa = vScales4[s0];
        let sb = vScales4[s0 + 1u];
        let sc = vScales4[s0 + 2u];
        let sd = vScales4[s0 + 3u];
        let w = pv${i};
        sV[dst] = vec4<u32>(fp4x2(w.x, sa.xy), fp4x2(w.x >> 16u, sa.zw), fp4x2(w.y, sb.xy), fp4x2(w.y >> 16u, sb.zw));
        sV[dst + 1u] = vec4<u32>(fp4x2(w.z, sc.xy), fp4x2(w.z >> 16u, sc.zw), fp4x2(w.w, sd.xy), fp4x2(w.w >> 16u, sd.zw));
      }
    }`);
          continue;
        }
        if (x === 'V' && vCodes) {
          // 16 one-byte codes → 16 f16 values (exact) → two vec4 of f16 pairs
          emit(`    {
      let e = tid + ${i * T}u;
      if (e < ${BK * n}u) {
        let dst = (e / ${n}u) * ${RSV}u + (e % ${n}u) * 2u;
        let w = pv${i};
        sV[dst] = vec4<u32>(decodeV2(w.x), decodeV2(w.x >> 16u), decodeV2(w.y), decodeV2(w.y >> 16u));
        sV[dst + 1u] = vec4<u32>(decodeV2(w.z), decodeV2(w.z >> 16u), decodeV2(w.w), decodeV2(w.w >> 16u));
      }
    }`);
          continue;
        }
        emit(`    {
      let e = tid + ${i * T}u;
      if (e < ${BK * n}u) { s${x}[(e / ${n}u) * ${rowStride[x]}u + e % ${n}u] = p${x.toLowerCase()}${i}; }
    }`);
      }
      if (x === 'K' && scaled) {
        // the K scales of this tile's keys, one per column (0 past Nk: those logits are masked anyway)
        emit(`    if (tid < ${BK}u) {
      let j = ${tileK} + tid;
      sKs[tid] = select(0.0, kScales[min(kScale0 + groupIndex(j, S.kDiv, S.kMul, S.kMod8Div), arrayLength(&kScales) - 1u)], j < ${bound});
    }`);
      }
    }
  };

  emit(`enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium_experimental.subgroup_matrix_uniformity);
diagnostic(off, subgroup_uniformity);
${FLASH_PARAMS_WGSL}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Qv: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> Kv: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> Vv: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> O: array<f32>;
@group(0) @binding(5) var<storage, read_write> Lse: array<u32>; // f32 bits: -inf cannot be a WGSL constant
@group(0) @binding(6) var<storage, read_write> scratch: array<f32>;${
    scaled
      ? `
${SAGE_PARAMS_WGSL}
@group(0) @binding(7) var<storage, read> qScales: array<f32>;
@group(0) @binding(8) var<storage, read> kScales: array<f32>;
@group(0) @binding(9) var<uniform> S: SageParams;
var<workgroup> sKs: array<f32, ${BK}>;
fn groupIndex(i: u32, div: u32, mul: u32, mod8Div: u32) -> u32 {
  return (i / div) * mul + select(0u, (i % 8u) / max(mod8Div, 1u), mod8Div > 0u);
}`
      : ''
  }
${vCodes && !vFp4 ? vDecodeWgsl(c.vFormat as VCodeFormat) + V2_DECODE_WGSL : ''}${vFp4 || pFp4 ? FP4_WGSL : ''}${
    vFp4
      ? `
fn fp4x2(w: u32, s: vec2<f32>) -> u32 { return pack2x16float(vec2<f32>(decodeFp4(w) * s.x, decodeFp4(w >> 8u) * s.y)); }`
      : ''
  }${c.pFormat === 'nvfp4' ? NVFP4_GROUP_WGSL : c.pFormat !== 'fp16' ? PQUANT_WGSL[c.pFormat] : ''}${
    vCodes || c.pFormat !== 'fp16'
      ? `
@group(0) @binding(10) var<storage, read> ${vFp4 ? 'vScales4: array<vec4<f32>>' : 'vScales: array<f32>'};
@group(0) @binding(11) var<storage, read> vMean: array<f32>;`
      : ''
  }${
    dsBlock > 0
      ? `
@group(0) @binding(12) var<storage, read> DeltaS: array<f32>;`
      : ''
  }
var<workgroup> sK: array<vec4<u32>, ${BK * RSK}>;
var<workgroup> sV: array<vec4<u32>, ${BK * RSV}>;
var<workgroup> sS: array<${sElem}, ${BQ * SS}>;
${c.aliasP ? '' : `var<workgroup> sP: array<vec4<u32>, ${BQ * PS}>;`}
var<workgroup> rescaleFlag: atomic<u32>;${
    dsRows > 0
      ? `
var<workgroup> sDs: array<vec4<f32>, ${(dsRows * BK) / 4}>;`
      : ''
  }${
    sparse
      ? `
${sparse.declarations}
${
  pv
    ? `
var<workgroup> pvKeep: array<atomic<u32>, ${BQ / G}>;
var<workgroup> pvAny: array<atomic<u32>, ${BQ / G}>;
var<workgroup> pvKeepAny: atomic<u32>;`
    : ''
}
// the first tile of a kept block at or after CSR entry e that starts below kEnd: (entry, first key, block end)
fn firstTileFrom(lset: u32, e0: u32, e1: u32, kEnd: u32) -> vec3<u32> {
  var e = e0;
  loop {
    if (e >= e1) { return vec3<u32>(e1, 0u, 0u); }
    let kb = keyBounds(lset, LW[SP.colOff + e]);
    if (min(kb.y, kEnd) > kb.x) { return vec3<u32>(e, kb.x, kb.y); }
    e += 1u;
  }
}
fn advanceTile(lset: u32, t: vec3<u32>, e1: u32, kEnd: u32) -> vec3<u32> {
  let k0 = t.y + ${BK}u;
  if (k0 < min(t.z, kEnd)) { return vec3<u32>(t.x, k0, t.z); }
  return firstTileFrom(lset, t.x + 1u, e1, kEnd);
}`
      : ''
  }

fn keysSeen(row: i32) -> u32 {
  if (P.causal == 0u) { return P.tokensKv; }
  return u32(clamp(row + 1 + P.causalShift, 0, i32(P.tokensKv)));
}

@compute @workgroup_size(${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_index) tid: u32,
        @builtin(subgroup_id) warp: u32,
        @builtin(subgroup_invocation_id) lane: u32) {
  let b = wid.z;
  let h = wid.y;
  let hk = h / P.groupSize;`);
  const X8 = i8 ? 16 : 8;
  const SPARSE_HEADER = `  let qb = wid.x;
  let lset = layoutSet(b, h);
  // rows [u.x, u.y) of the query block, kept CSR entries [u.z, u.w); uniform (read-only storage)
  let u = vec4<u32>(queryBounds(lset, qb), rowRange(lset, qb));
  let qTok = P.qTokenStride / ${X8}u;
  let kTok = P.kvTokenStride / ${X8}u;
  let vTok = P.kvTokenStride / ${vCodes ? 16 : 8}u;
  let kBase = (b * P.kvBatchStride + hk * P.kvHeadStride) / ${X8}u;
  let vBase = (b * P.kvBatchStride + hk * P.kvHeadStride) / ${vCodes ? 16 : 8}u;
  let scratch0 = ((b * P.headsQ + h) * P.qBlocks + qb) * ${BQ * D}u + warp * ${WQ * D}u;
  let r = lane / ${LPR}u;
  let part = lane % ${LPR}u;
  let rowInBlock = warp * ${WQ}u + r;${
    pv
      ? `
  let threshold = pvThreshold(h);
  let pvGroup = rowInBlock / ${G}u;
  var tested = 0u;
  var skipped = 0u;`
      : ''
  }
  // the block's rows in chunks of ${BQ}, as the Triton SVG2 kernel loops over a cluster in BLOCK_M chunks
  for (var q0 = u.x; q0 < u.y; q0 += ${BQ}u) {
  let qRow0 = (b * P.qBatchStride + h * P.qHeadStride) / ${X8}u + (q0 + warp * ${WQ}u) * qTok;
  let row = q0 + rowInBlock;
  let seen = select(0u, keysSeen(i32(row)), row < u.y);
  var mRef = -3.0e38;
  var mTrue = -3.0e38;
  var lPart = 0.0;
  var alpha = 1.0;
  let kEnd = keysSeen(i32(min(q0 + ${BQ}u, u.y)) - 1);
  // the current key tile: (CSR entry, first key, end of its kept block); entry u.w when none is left.
  // Computed from read-only storage and uniform values only, so loops over it are uniform.
  var cur = firstTileFrom(lset, u.z, u.w, kEnd);
`;
  if (!sparse) {
    emit(`  // heaviest causal blocks first: the last query block sees the most keys
  let qBlock = select(wid.x, P.qBlocks - 1u - wid.x, P.causal != 0u);
  let q0 = qBlock * ${BQ}u;
  // element strides → vec4 strides: ${i8 ? '16 int8 codes' : '8 f16'} per vec4 for Q and K, 8 f16 for V
  let qTok = P.qTokenStride / ${i8 ? 16 : 8}u;
  let kTok = P.kvTokenStride / ${i8 ? 16 : 8}u;
  let vTok = P.kvTokenStride / ${vCodes ? 16 : 8}u;
  let qRow0 = (b * P.qBatchStride + h * P.qHeadStride) / ${i8 ? 16 : 8}u + (q0 + warp * ${WQ}u) * qTok;
  let kBase = (b * P.kvBatchStride + hk * P.kvHeadStride) / ${i8 ? 16 : 8}u;
  let vBase = (b * P.kvBatchStride + hk * P.kvHeadStride) / ${vCodes ? 16 : 8}u;
  let scratch0 = ((b * P.headsQ + h) * P.qBlocks + qBlock) * ${BQ * D}u + warp * ${WQ * D}u;

  // softmax lane mapping: row r of this warp, column part of the key tile
  let r = lane / ${LPR}u;
  let part = lane % ${LPR}u;
  let rowInBlock = warp * ${WQ}u + r;
  let row = q0 + rowInBlock;
  let seen = select(0u, keysSeen(i32(row)), row < P.tokensQ);
  var mRef = -3.0e38;
  var mTrue = -3.0e38;
  var lPart = 0.0;
  var alpha = 1.0;
  let kEnd = keysSeen(i32(min(q0 + ${BQ}u, P.tokensQ)) - 1);
  let nTiles = (kEnd + ${BK - 1}u) / ${BK}u;
`);
  } else {
    emit(SPARSE_HEADER);
  }

  for (let i = 0; i < loads.K; i++) emit(`  var pk${i}: vec4<u32>;`);
  for (let i = 0; i < loads.V; i++) emit(`  var pv${i}: vec4<u32>;`);
  if (dsRows > 0) {
    // the workgroup's ΔS rows (smoothing blocks of ${dsBlock} Q tokens from q0's), staged per key tile;
    // this lane's columns of its row's block in sDs
    emit(`  let dsBlocks = (P.tokensQ + ${dsBlock - 1}u) / ${dsBlock}u;
  let ds0 = q0 / ${dsBlock}u;
  let dsHead = (b * P.headsQ + h) * dsBlocks;
  let dsLast = arrayLength(&DeltaS) - 1u;
  let dsLane = (row / ${dsBlock}u - ds0) * ${BK / 4}u + part * ${CH / 4}u;`);
  } else if (dsBlock > 0) {
    // this row's ΔS row: its smoothing block of ${dsBlock} Q tokens
    emit(`  let dsRow = ((b * P.headsQ + h) * ((P.tokensQ + ${dsBlock - 1}u) / ${dsBlock}u) + row / ${dsBlock}u) * P.tokensKv;
  let dsLast = arrayLength(&DeltaS) - 1u;`);
  }
  if (scaled) {
    // this row's Q scale; σ·log2e is already in per-block Q scales (S.qFactor = 1), else S.qFactor = σ·log2e
    emit(`  let kScale0 = (b * P.headsKv + hk) * S.kGroups;
  let qScale = select(0.0, qScales[min((b * P.headsQ + h) * S.qGroups + groupIndex(row, S.qDiv, S.qMul, S.qMod8Div), arrayLength(&qScales) - 1u)] * S.qFactor, row < P.tokensQ);`);
  }
  // the 'no-staging' ablation must still reference K and V, or the 'auto' layout drops their bindings
  if (!staging) emit(`  if (arrayLength(&Kv) + arrayLength(&Vv) == 0u) { return; }`);
  if (c.qInRegisters) {
    for (let qi = 0; qi < nQ; qi++) for (let dd = 0; dd < nDk; dd++) emit('  ' + loadQ(qi, dd, true));
  }
  for (let qi = 0; qi < nQ; qi++) for (let dd = 0; dd < nD; dd++) emit(`  var o_${qi}_${dd} = ${A}();`);
  // the sparse kernel's tiles come from the cursor: this one (k0, bounded by its block's end kHi) and
  // the next (nxt.y, bounded by nxt.z)
  const next = sparse ? 'nxt.y' : `k0 + ${BK}u`;
  const first = sparse ? 'cur.y' : '0u';
  const hasNext = sparse ? 'nxt.x < u.w' : 't + 1u < nTiles';
  const [bound, nextBound, firstBound] = sparse
    ? ['kHi', 'nxt.z', 'cur.z']
    : ['P.tokensKv', 'P.tokensKv', 'P.tokensKv'];
  if (c.staging === 'prefetch') loadTile(first, 'KV', firstBound);
  if (c.staging === 'split') {
    loadTile(first, 'KV', firstBound);
    storeTile('K', first, firstBound);
  }
  emit(`  ${sparse ? 'loop {' : 'for (var t = 0u; t < nTiles; t++) {'}${
    sparse
      ? `
    if (cur.x >= u.w) { break; }
    let k0 = cur.y;
    let kHi = cur.z;
    let nxt = advanceTile(lset, cur, u.w, kEnd);`
      : `
    let k0 = t * ${BK}u;`
  }${
    pv
      ? `
    // the last SP.exemptLast kept blocks are always computed (the released kernels' loop, §1.3)
    let testTile = cur.x + SP.exemptLast < u.w;`
      : ''
  }
    workgroupBarrier();
    if (tid == 0u) { atomicStore(&rescaleFlag, 0u); }${
      pv
        ? `
    if (tid < ${BQ / G}u) {
      atomicStore(&pvKeep[tid], 0u);
      atomicStore(&pvAny[tid], 0u);
    }
    if (tid == 0u) { atomicStore(&pvKeepAny, 0u); }`
        : ''
    }`);
  // this tile's ΔS columns of the workgroup's smoothing blocks (0 past Nk and past the last block:
  // those logits are masked), written after the barrier that ends the previous tile's softmax reads
  // and read after the S barrier; one scalar load per row block and key instead of one per element
  const stageDeltaS = () => {
    if (dsRows === 0) return;
    const n = dsRows * BK;
    emit(`    ${n <= T ? `if (tid < ${n}u) {\n      let e = tid;` : `for (var e = tid; e < ${n}u; e += ${T}u) {`}
      let j = k0 + e % ${BK}u;
      let blk = ds0 + e / ${BK}u;
      sDs[e / 4u][e % 4u] = select(0.0, DeltaS[min((dsHead + blk) * P.tokensKv + j, dsLast)], j < P.tokensKv && blk < dsBlocks);
    }`);
  };
  if (c.staging === 'prefetch') {
    storeTile('KV', 'k0', bound);
    stageDeltaS();
    emit(`    workgroupBarrier();\n    if (${hasNext}) {`);
    loadTile(next, 'KV', nextBound);
    emit(`    }`);
  } else if (c.staging === 'direct') {
    loadTile('k0', 'KV', bound);
    stageDeltaS();
    storeTile('KV', 'k0', bound);
    emit(`    workgroupBarrier();`);
  } else {
    // K_t is in sK (stored after the previous S barrier); V_t waits in registers for sV to be free
    storeTile('V', 'k0', bound);
    stageDeltaS();
    emit(`    if (${hasNext}) {`);
    loadTile(next, 'K', nextBound);
    emit(`    }`);
  }
  // S = Q Kᵀ. Interleaved: every accumulator of the tile advances one 16-deep step per K fragment
  // round, so nK·nQ independent MMA chains are in flight instead of one chain of nD dependent MMAs.
  const qOperand = (qi: number, dd: number) => {
    if (c.qInRegisters) return qFrag(qi, dd);
    emit(
      `      let ${qFrag(qi, dd)} = subgroupMatrixLoad<${LQ}, row_major>(&Qv, qRow0 + ${qi * 16}u * qTok + ${dd * 2}u, qTok);`,
    );
    return qFrag(qi, dd);
  };
  const kLoad = (kj: number, dd: number) =>
    `let kf${kj} = subgroupMatrixLoad<${RK}, col_major>(&sK, ${kj * 16 * RSK + dd * 2}u, ${RSK}u);`;
  const storeS = (kj: number, qi: number) =>
    emit(
      `    subgroupMatrixStore<row_major>(&sS, (warp * ${WQ}u + ${qi * 16}u) * ${SS}u + ${kj * 4}u, s_${kj}_${qi}, ${SS}u);`,
    );
  if (c.interleaveS) {
    for (let kj = 0; kj < nK; kj++) for (let qi = 0; qi < nQ; qi++) emit(`    var s_${kj}_${qi} = ${AS}();`);
    for (let dd = 0; dd < nDk; dd++) {
      emit(`    {`);
      for (let kj = 0; kj < nK; kj++) emit(`      ${kLoad(kj, dd)}`);
      for (let qi = 0; qi < nQ; qi++) {
        const qf = qOperand(qi, dd);
        for (let kj = 0; kj < nK; kj++)
          emit(`      s_${kj}_${qi} = subgroupMatrixMultiplyAccumulate(${qf}, kf${kj}, s_${kj}_${qi});`);
      }
      emit(`    }`);
    }
    for (let kj = 0; kj < nK; kj++) for (let qi = 0; qi < nQ; qi++) storeS(kj, qi);
  } else {
    for (let kj = 0; kj < nK; kj++) {
      for (let qi = 0; qi < nQ; qi++) emit(`    var s_${kj}_${qi} = ${AS}();`);
      for (let dd = 0; dd < nDk; dd++) {
        emit(`    {\n      ${kLoad(kj, dd)}`);
        for (let qi = 0; qi < nQ; qi++) {
          emit(
            `      s_${kj}_${qi} = subgroupMatrixMultiplyAccumulate(${qOperand(qi, dd)}, kf${kj}, s_${kj}_${qi});`,
          );
        }
        emit(`    }`);
      }
      for (let qi = 0; qi < nQ; qi++) storeS(kj, qi);
    }
  }
  // online softmax on lanes, lazily rescaled; straight-line code so every S value stays in a register
  const pStore = (c8: number, words: string) =>
    c.aliasP
      ? `sS[pRow + ${c8}u] = bitcast<${sElem}>(vec4<u32>(${words}));`
      : `sP[pRow + ${c8}u] = vec4<u32>(${words});`;
  emit(`    workgroupBarrier();`);
  if (c.staging === 'split') {
    // sK is free once every warp's S is stored; the next V load overlaps the softmax and PV
    emit(`    if (${hasNext}) {`);
    storeTile('K', next, nextBound);
    loadTile(next, 'V', nextBound);
    emit(`    }`);
  }
  if (pv)
    emit(`    var doPv = true;
    var anyPv = true;`);
  emit(`    {
      let pRow = rowInBlock * ${PS}u + ${pBase}u + part * ${CH / 8}u;`);
  if (c.ablate === 'no-softmax') {
    const one = 'pack2x16float(vec2<f32>(0.03125, 0.03125))';
    for (let c8 = 0; c8 < CH / 8; c8++) emit(`      ${pStore(c8, [one, one, one, one].join(', '))}`);
    emit(`      lPart += ${(CH / 32).toFixed(4)};`);
  } else {
    emit(`      let sRow = rowInBlock * ${SS}u + part * ${CH / 4}u;
      // columns of this lane's chunk that the row may see (causal limit, Nk, rows past Nq: none)
      let lim = i32(${sparse ? 'min(seen, kHi)' : 'seen'}) - i32(k0 + part * ${CH}u);
      var tileMax = -3.0e38;`);
    // ΔS of the chunk's columns (clamped reads; masked columns are discarded below)
    const ds = (c4: number) =>
      dsRows > 0
        ? ` + sDs[dsLane + ${c4}u] * P.scaleLog2`
        : dsBlock > 0
          ? ` + vec4<f32>(${[0, 1, 2, 3].map((e) => `DeltaS[min(dsCol + ${c4 * 4 + e}u, dsLast)]`).join(', ')}) * P.scaleLog2`
          : '';
    // the chunk's first ΔS column, taken before the column masks k0… shadow the tile start k0
    if (dsBlock > 0 && dsRows === 0) emit(`      let dsCol = dsRow + k0 + part * ${CH}u;`);
    for (let c4 = 0; c4 < CH / 4; c4++) {
      emit(
        scaled
          ? `      let x${c4} = vec4<f32>(sS[sRow + ${c4}u]) * qScale * vec4<f32>(${[0, 1, 2, 3].map((e) => `sKs[part * ${CH}u + ${c4 * 4 + e}u]`).join(', ')})${ds(c4)};`
          : `      let x${c4} = sS[sRow + ${c4}u] * P.scaleLog2${ds(c4)};`,
      );
      for (let e = 0; e < 4; e++) {
        emit(`      let k${c4 * 4 + e} = ${c4 * 4 + e} < lim;`);
        emit(`      tileMax = select(tileMax, max(tileMax, x${c4}[${e}]), k${c4 * 4 + e});`);
      }
    }
    if (LPR === 2) emit(`      tileMax = max(tileMax, subgroupShuffleXor(tileMax, 1u));`);
    if (pv) {
      // stage 2 (sparse_attention.md §1.3): a row votes to compute when (m_local − m_prev) + pvthreshd > 0,
      // m_prev being its exact running max (mTrue), not the lazy reference mRef
      emit(`      if (testTile && tileMax > -1.0e38) {
        atomicStore(&pvAny[pvGroup], 1u);
        if ((tileMax - mTrue) + threshold > 0.0) {
          atomicStore(&pvKeep[pvGroup], 1u);
          atomicStore(&pvKeepAny, 1u);
        }
      }`);
      if (c.pFormat === 'fp16') emit(`      mTrue = max(mTrue, tileMax);`);
    }
    if (c.pFormat !== 'fp16') emit(`      mTrue = max(mTrue, tileMax);`);
    emit(`      alpha = 1.0;
      if (tileMax > mRef + ${c.tau.toFixed(1)}) {
        // O and l hold contributions scaled to the old reference only if mRef was set
        if (mRef > -1.0e38) {
          alpha = exp2(mRef - tileMax);
          atomicStore(&rescaleFlag, 1u);
        }
        lPart *= alpha;
        mRef = tileMax;
      }`);
    if (pv) {
      // the group's vote; a skipped group only rescales (O in the uniform branch below, l above). The
      // PV product may only be branched on a workgroup-uniform value (WGSL uniformity: subgroup matrix
      // builtins need uniform control flow, and a group's vote is not provably uniform even where its
      // rows are whole warps), so the branch is on "some group keeps the tile" and the rows of a
      // skipped group store P = 0 instead.
      emit(`      let keepAny = workgroupUniformLoad(&pvKeepAny);
      anyPv = !testTile || keepAny != 0u;
      doPv = !testTile || atomicLoad(&pvKeep[pvGroup]) != 0u;
      if (testTile && part == 0u && rowInBlock % ${G}u == 0u && atomicLoad(&pvAny[pvGroup]) != 0u) {
        tested += 1u;
        if (!doPv) { skipped += 1u; }
      }
      if (doPv) {`);
    }
    if (c.pFormat === 'fp16') {
      for (let i = 0; i < CH; i++) {
        emit(`      let p${i} = select(0.0, exp2(x${i >> 2}[${i & 3}] - mRef), k${i});`);
      }
    } else {
      // P̃ against the exact running max (in [0, P_r]), rounded, then moved into O's frame by pScale
      const off = c.pFormat === 'nvfp4' ? nvfp4POffset(c.pScaling ?? 'two-level') : P_OFFSET[c.pFormat];
      emit(`      let pScale = exp2(mTrue - ${off} - mRef);`);
      for (let i = 0; i < CH; i++) {
        emit(`      let pt${i} = select(0.0, exp2(x${i >> 2}[${i & 3}] - mTrue + ${off}), k${i});`);
      }
      emit(`      lPart += (${Array.from({ length: CH }, (_, i) => `pt${i}`).join(' + ')}) * pScale;`);
      if (pFp4) {
        // SA3 §3.2 level 2 per 16 keys: s = max/6 divides, E4M3(s) multiplies (p-quant.ts)
        const span = Math.min(16, CH);
        for (let g = 0; g < CH / span; g++) {
          const members = Array.from({ length: span }, (_, e) => `pt${g * span + e}`);
          emit(`      var gm${g} = ${members[0]};`);
          for (const m of members.slice(1)) emit(`      gm${g} = max(gm${g}, ${m});`);
          if (span < 16) emit(`      gm${g} = max(gm${g}, subgroupShuffleXor(gm${g}, 1u));`);
          emit(`      let gs${g} = nvfp4Group(gm${g});`);
          for (let e = 0; e < span; e++) {
            const i = g * span + e;
            emit(`      let p${i} = roundE2M1(pt${i} * gs${g}.x) * gs${g}.y * pScale;`);
          }
        }
      } else {
        for (let i = 0; i < CH; i++) emit(`      let p${i} = quantP(pt${i}) * pScale;`);
      }
    }
    if (c.pFormat === 'fp16')
      emit(`      lPart += ${Array.from({ length: CH }, (_, i) => `p${i}`).join(' + ')};`);
    for (let c8 = 0; c8 < CH / 8; c8++) {
      const words = [0, 1, 2, 3].map(
        (e) => `pack2x16float(vec2<f32>(p${c8 * 8 + 2 * e}, p${c8 * 8 + 2 * e + 1}))`,
      );
      emit(`      ${pStore(c8, words.join(', '))}`);
    }
    if (pv) {
      // a skipped group's rows contribute nothing to a tile another group keeps
      const zero = 'pack2x16float(vec2<f32>(0.0, 0.0))';
      emit(`      } else {`);
      for (let c8 = 0; c8 < CH / 8; c8++) emit(`        ${pStore(c8, [zero, zero, zero, zero].join(', '))}`);
      emit(`      }`);
    }
  }
  emit(`    }
    if (workgroupUniformLoad(&rescaleFlag) != 0u) {`);
  for (let qi = 0; qi < nQ; qi++) {
    for (let dd = 0; dd < nD; dd++) {
      emit(
        `      subgroupMatrixStore<row_major>(&scratch, scratch0 + ${qi * 16 * D + dd * 16}u, o_${qi}_${dd}, ${D}u);`,
      );
    }
  }
  emit(`      storageBarrier();
      for (var d = 0u; d < ${DC}u; d++) {
        let i = scratch0 + r * ${D}u + part * ${DC}u + d;
        scratch[i] = scratch[i] * alpha;
      }
      storageBarrier();`);
  for (let qi = 0; qi < nQ; qi++) {
    for (let dd = 0; dd < nD; dd++) {
      emit(
        `      o_${qi}_${dd} = subgroupMatrixLoad<${A}, row_major>(&scratch, scratch0 + ${qi * 16 * D + dd * 16}u, ${D}u);`,
      );
    }
  }
  emit(`    }`);
  // O += P V, skipped when no stage-2 group keeps the tile (a workgroup-uniform decision)
  if (pv) emit(`    if (anyPv) {`);
  for (let kk = 0; kk < nK; kk++) {
    emit(`    {`);
    for (let qi = 0; qi < nQ; qi++) {
      emit(
        `      let pf${qi} = subgroupMatrixLoad<${L}, row_major>(&${pArray}, (warp * ${WQ}u + ${qi * 16}u) * ${PS}u + ${pBase + kk * 2}u, ${PS}u);`,
      );
    }
    for (let dd = 0; dd < nD; dd++) {
      emit(`      {
        let vf = subgroupMatrixLoad<${R}, row_major>(&sV, ${kk * 16 * RSV + dd * 2}u, ${RSV}u);`);
      for (let qi = 0; qi < nQ; qi++)
        emit(`        o_${qi}_${dd} = subgroupMatrixMultiplyAccumulate(pf${qi}, vf, o_${qi}_${dd});`);
      emit(`      }`);
    }
    emit(`    }`);
  }
  if (pv) emit(`    }`);
  if (sparse) emit(`    cur = nxt;`);
  emit(`  }`);
  // epilogue: O / l through the scratch rows, written in the output layout
  for (let qi = 0; qi < nQ; qi++) {
    for (let dd = 0; dd < nD; dd++) {
      emit(
        `  subgroupMatrixStore<row_major>(&scratch, scratch0 + ${qi * 16 * D + dd * 16}u, o_${qi}_${dd}, ${D}u);`,
      );
    }
  }
  emit(`  storageBarrier();`);
  if (LPR === 2) emit(`  let l = lPart + subgroupShuffleXor(lPart, 1u);`);
  else emit(`  let l = lPart;`);
  emit(`  if (row < ${sparse ? 'u.y' : 'P.tokensQ'}) {
    let inv = select(0.0, 1.0 / l, l > 0.0);
    let dst = b * P.qBatchStride + h * P.qHeadStride + row * P.qTokenStride + part * ${DC}u;
    let src = scratch0 + r * ${D}u + part * ${DC}u;
    ${
      vCodes || c.pFormat !== 'fp16'
        ? `// per-channel V scale and the V mean removed by smoothing (sageattention.md §4.4)
    let v0 = (b * P.headsKv + hk) * ${D}u + part * ${DC}u;
    for (var d = 0u; d < ${DC}u; d++) { O[dst + d] = scratch[src + d] * inv${vFp4 ? '' : ' * vScales[v0 + d]'} + vMean[v0 + d]; }`
        : `for (var d = 0u; d < ${DC}u; d++) { O[dst + d] = scratch[src + d] * inv; }`
    }
    if (part == 0u) {
      Lse[(b * P.headsQ + h) * P.tokensQ + row] = select(0xff800000u, bitcast<u32>((mRef + log2(l)) * 0.6931471805599453), l > 0.0);
    }
  }${
    sparse
      ? `
  // the next chunk reuses this warp's scratch rows
  storageBarrier();
  }${
    pv
      ? `
  if (part == 0u && rowInBlock % ${G}u == 0u && tested > 0u) {
    atomicAdd(&pvCounts[0], tested);
    atomicAdd(&pvCounts[1], skipped);
  }`
      : ''
  }`
      : ''
  }
}`);
  return lines.join('\n');
}
