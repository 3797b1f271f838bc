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
import { FLASH_PARAMS_WGSL } from './flash-params.js';

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
  /** Rescale threshold in log2 units: P ≤ 2^tau. */
  tau: number;
  /** Subgroup size the lane mapping assumes (32 on NVIDIA). */
  subgroupSize: 32;
}

export const DEFAULT_MMA_CONFIG: Omit<MmaFlashConfig, 'headDim'> = Object.freeze({
  warps: 8,
  rowsPerWarp: 16,
  blockK: 32,
  qInRegisters: true,
  tau: 8,
  subgroupSize: 32,
  aliasP: false,
  interleaveS: true,
  staging: 'prefetch',
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
  const kvRow = c.headDim / 8 + 1;
  return 16 * (2 * c.blockK * kvRow + bq * (c.blockK / 4 + 1) + (c.aliasP ? 0 : bq * (c.blockK / 8 + 1))) + 4;
}

/** Query rows per workgroup. */
export function mmaBlockQ(c: MmaFlashConfig): number {
  return c.warps * c.rowsPerWarp;
}

export function mmaFlashWgsl(c: MmaFlashConfig): string {
  const D = c.headDim;
  const W = c.warps;
  const WQ = c.rowsPerWarp;
  const BK = c.blockK;
  const T = W * c.subgroupSize;
  const BQ = W * WQ;
  const LPR = c.subgroupSize / WQ; // lanes per row in the softmax
  const RS = D / 8 + 1; // K/V tile row stride, vec4<u32> (8 f16 each) + 16 B pad
  const RSD = D / 8; // data vec4 per K/V row
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
  const nK = BK / 16;
  const loadsPerThread = Math.ceil((BK * RSD) / T);
  if (D % 16 !== 0 || BK % 16 !== 0 || CH % 8 !== 0)
    throw new Error(`bad MMA flash config ${JSON.stringify(c)}`);

  const L = 'subgroup_matrix_left<f16, 16, 16>';
  const R = 'subgroup_matrix_right<f16, 16, 16>';
  const A = 'subgroup_matrix_result<f32, 16, 16>';
  const lines: string[] = [];
  const emit = (s: string) => lines.push(s);

  // --- fragments of Q: q_{qi}_{dd}
  const qFrag = (qi: number, dd: number) => `q_${qi}_${dd}`;
  const loadQ = (qi: number, dd: number, decl: boolean) =>
    `${decl ? 'var ' : ''}${qFrag(qi, dd)}${decl ? `: ${L}` : ''} = subgroupMatrixLoad<${L}, row_major>(&Qv, qRow0 + ${qi * 16}u * qTok + ${dd * 2}u, qTok);`;

  // --- K/V staging: loads into registers pk*/pv*, stores from them
  const staging = c.ablate !== 'no-staging';
  const which = (kv: 'K' | 'V' | 'KV') => (kv === 'KV' ? ['K', 'V'] : [kv]);
  const loadTile = (tileExpr: string, kv: 'K' | 'V' | 'KV') => {
    for (let i = 0; i < (staging ? loadsPerThread : 0); i++) {
      emit(`    {
      let e = tid + ${i * T}u;
      let j = ${tileExpr} + e / ${RSD}u;
      let ok = e < ${BK * RSD}u && j < P.tokensKv;
      let src = kv0 + j * kvTok + e % ${RSD}u;`);
      for (const x of which(kv)) {
        emit(
          `      p${x.toLowerCase()}${i} = select(vec4<u32>(), ${x}v[min(src, arrayLength(&${x}v) - 1u)], ok);`,
        );
      }
      emit(`    }`);
    }
  };
  const storeTile = (kv: 'K' | 'V' | 'KV') => {
    for (let i = 0; i < (staging ? loadsPerThread : 0); i++) {
      emit(`    {
      let e = tid + ${i * T}u;
      if (e < ${BK * RSD}u) {
        let dst = (e / ${RSD}u) * ${RS}u + e % ${RSD}u;`);
      for (const x of which(kv)) emit(`        s${x}[dst] = p${x.toLowerCase()}${i};`);
      emit(`      }
    }`);
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
@group(0) @binding(6) var<storage, read_write> scratch: array<f32>;
var<workgroup> sK: array<vec4<u32>, ${BK * RS}>;
var<workgroup> sV: array<vec4<u32>, ${BK * RS}>;
var<workgroup> sS: array<vec4<f32>, ${BQ * SS}>;
${c.aliasP ? '' : `var<workgroup> sP: array<vec4<u32>, ${BQ * PS}>;`}
var<workgroup> rescaleFlag: atomic<u32>;

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
  let hk = h / P.groupSize;
  // heaviest causal blocks first: the last query block sees the most keys
  let qBlock = select(wid.x, P.qBlocks - 1u - wid.x, P.causal != 0u);
  let q0 = qBlock * ${BQ}u;
  let qTok = P.qTokenStride / 8u;
  let kvTok = P.kvTokenStride / 8u;
  let qRow0 = (b * P.qBatchStride + h * P.qHeadStride) / 8u + (q0 + warp * ${WQ}u) * qTok;
  let kv0 = (b * P.kvBatchStride + hk * P.kvHeadStride) / 8u;
  let scratch0 = ((b * P.headsQ + h) * P.qBlocks + qBlock) * ${BQ * D}u + warp * ${WQ * D}u;

  // softmax lane mapping: row r of this warp, column part of the key tile
  let r = lane / ${LPR}u;
  let part = lane % ${LPR}u;
  let rowInBlock = warp * ${WQ}u + r;
  let row = q0 + rowInBlock;
  let seen = select(0u, keysSeen(i32(row)), row < P.tokensQ);
  var mRef = -3.0e38;
  var lPart = 0.0;
  var alpha = 1.0;
  let kEnd = keysSeen(i32(min(q0 + ${BQ}u, P.tokensQ)) - 1);
  let nTiles = (kEnd + ${BK - 1}u) / ${BK}u;
`);
  for (let i = 0; i < loadsPerThread; i++) emit(`  var pk${i}: vec4<u32>;\n  var pv${i}: vec4<u32>;`);
  // the 'no-staging' ablation must still reference K and V, or the 'auto' layout drops their bindings
  if (!staging) emit(`  if (arrayLength(&Kv) + arrayLength(&Vv) == 0u) { return; }`);
  if (c.qInRegisters) {
    for (let qi = 0; qi < nQ; qi++) for (let dd = 0; dd < nD; dd++) emit('  ' + loadQ(qi, dd, true));
  }
  for (let qi = 0; qi < nQ; qi++) for (let dd = 0; dd < nD; dd++) emit(`  var o_${qi}_${dd} = ${A}();`);
  const next = `k0 + ${BK}u`;
  if (c.staging === 'prefetch') loadTile('0u', 'KV');
  if (c.staging === 'split') {
    loadTile('0u', 'KV');
    storeTile('K');
  }
  emit(`  for (var t = 0u; t < nTiles; t++) {
    let k0 = t * ${BK}u;
    workgroupBarrier();
    if (tid == 0u) { atomicStore(&rescaleFlag, 0u); }`);
  if (c.staging === 'prefetch') {
    storeTile('KV');
    emit(`    workgroupBarrier();\n    if (t + 1u < nTiles) {`);
    loadTile(next, 'KV');
    emit(`    }`);
  } else if (c.staging === 'direct') {
    loadTile('k0', 'KV');
    storeTile('KV');
    emit(`    workgroupBarrier();`);
  } else {
    // K_t is in sK (stored after the previous S barrier); V_t waits in registers for sV to be free
    storeTile('V');
    emit(`    if (t + 1u < nTiles) {`);
    loadTile(next, 'K');
    emit(`    }`);
  }
  // S = Q Kᵀ. Interleaved: every accumulator of the tile advances one 16-deep step per K fragment
  // round, so nK·nQ independent MMA chains are in flight instead of one chain of nD dependent MMAs.
  const qOperand = (qi: number, dd: number) => {
    if (c.qInRegisters) return qFrag(qi, dd);
    emit(
      `      let ${qFrag(qi, dd)} = subgroupMatrixLoad<${L}, row_major>(&Qv, qRow0 + ${qi * 16}u * qTok + ${dd * 2}u, qTok);`,
    );
    return qFrag(qi, dd);
  };
  const kLoad = (kj: number, dd: number) =>
    `let kf${kj} = subgroupMatrixLoad<${R}, col_major>(&sK, ${kj * 16 * RS + dd * 2}u, ${RS}u);`;
  const storeS = (kj: number, qi: number) =>
    emit(
      `    subgroupMatrixStore<row_major>(&sS, (warp * ${WQ}u + ${qi * 16}u) * ${SS}u + ${kj * 4}u, s_${kj}_${qi}, ${SS}u);`,
    );
  if (c.interleaveS) {
    for (let kj = 0; kj < nK; kj++) for (let qi = 0; qi < nQ; qi++) emit(`    var s_${kj}_${qi} = ${A}();`);
    for (let dd = 0; dd < nD; dd++) {
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
      for (let qi = 0; qi < nQ; qi++) emit(`    var s_${kj}_${qi} = ${A}();`);
      for (let dd = 0; dd < nD; dd++) {
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
      ? `sS[pRow + ${c8}u] = bitcast<vec4<f32>>(vec4<u32>(${words}));`
      : `sP[pRow + ${c8}u] = vec4<u32>(${words});`;
  emit(`    workgroupBarrier();`);
  if (c.staging === 'split') {
    // sK is free once every warp's S is stored; the next V load overlaps the softmax and PV
    emit(`    if (t + 1u < nTiles) {`);
    storeTile('K');
    loadTile(next, 'V');
    emit(`    }`);
  }
  emit(`    {
      let pRow = rowInBlock * ${PS}u + ${pBase}u + part * ${CH / 8}u;`);
  if (c.ablate === 'no-softmax') {
    const one = 'pack2x16float(vec2<f32>(0.03125, 0.03125))';
    for (let c8 = 0; c8 < CH / 8; c8++) emit(`      ${pStore(c8, [one, one, one, one].join(', '))}`);
    emit(`      lPart += ${(CH / 32).toFixed(4)};`);
  } else {
    emit(`      let sRow = rowInBlock * ${SS}u + part * ${CH / 4}u;
      // columns of this lane's chunk that the row may see (causal limit, Nk, rows past Nq: none)
      let lim = i32(seen) - i32(k0 + part * ${CH}u);
      var tileMax = -3.0e38;`);
    for (let c4 = 0; c4 < CH / 4; c4++) {
      emit(`      let x${c4} = sS[sRow + ${c4}u] * P.scaleLog2;`);
      for (let e = 0; e < 4; e++) {
        emit(`      let k${c4 * 4 + e} = ${c4 * 4 + e} < lim;`);
        emit(`      tileMax = select(tileMax, max(tileMax, x${c4}[${e}]), k${c4 * 4 + e});`);
      }
    }
    if (LPR === 2) emit(`      tileMax = max(tileMax, subgroupShuffleXor(tileMax, 1u));`);
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
    for (let i = 0; i < CH; i++) {
      emit(`      let p${i} = select(0.0, exp2(x${i >> 2}[${i & 3}] - mRef), k${i});`);
    }
    const sum: string[] = [];
    for (let i = 0; i < CH; i++) sum.push(`p${i}`);
    emit(`      lPart += ${sum.join(' + ')};`);
    for (let c8 = 0; c8 < CH / 8; c8++) {
      const words = [0, 1, 2, 3].map(
        (e) => `pack2x16float(vec2<f32>(p${c8 * 8 + 2 * e}, p${c8 * 8 + 2 * e + 1}))`,
      );
      emit(`      ${pStore(c8, words.join(', '))}`);
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
  // O += P V
  for (let kk = 0; kk < nK; kk++) {
    emit(`    {`);
    for (let qi = 0; qi < nQ; qi++) {
      emit(
        `      let pf${qi} = subgroupMatrixLoad<${L}, row_major>(&${pArray}, (warp * ${WQ}u + ${qi * 16}u) * ${PS}u + ${pBase + kk * 2}u, ${PS}u);`,
      );
    }
    for (let dd = 0; dd < nD; dd++) {
      emit(`      {
        let vf = subgroupMatrixLoad<${R}, row_major>(&sV, ${kk * 16 * RS + dd * 2}u, ${RS}u);`);
      for (let qi = 0; qi < nQ; qi++)
        emit(`        o_${qi}_${dd} = subgroupMatrixMultiplyAccumulate(pf${qi}, vf, o_${qi}_${dd});`);
      emit(`      }`);
    }
    emit(`    }`);
  }
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
  emit(`  if (row < P.tokensQ) {
    let inv = select(0.0, 1.0 / l, l > 0.0);
    let dst = b * P.qBatchStride + h * P.qHeadStride + row * P.qTokenStride + part * ${DC}u;
    let src = scratch0 + r * ${D}u + part * ${DC}u;
    for (var d = 0u; d < ${DC}u; d++) { O[dst + d] = scratch[src + d] * inv; }
    if (part == 0u) {
      Lse[(b * P.headsQ + h) * P.tokensQ + row] = select(0xff800000u, bitcast<u32>((mRef + log2(l)) * 0.6931471805599453), l > 0.0);
    }
  }
}`);
  return lines.join('\n');
}
