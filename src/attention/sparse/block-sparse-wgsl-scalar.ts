/**
 * WGSL generator for the portable block-sparse tiers ('f32' everywhere, lavapipe included, and 'f16'):
 * the dense scalar kernel's pieces (flash-wgsl-scalar.ts: operand loads, staging, scores, the online
 * softmax update, the epilogue) driven by the layout instead of by the whole sequence
 * (sparse_attention.md §4 "Shared core"):
 *
 * - one workgroup per (b, h, query block); the block's rows are processed in chunks of the workgroup
 *   size (one row per invocation), as the Triton SVG2 kernel loops over a cluster in BLOCK_M chunks;
 * - for each chunk, the kept key blocks of its CSR row in ascending order, each in key tiles of the
 *   staging size, bounds-masked at the block's end (variable segments need no padding);
 * - with stage 2 compiled in (§1.3), each key tile of a tested block is preceded by the group vote
 *   diff + pvthreshd > 0 through workgroup flags, and skipped groups only rescale.
 *
 * Loop bounds that guard barriers are read from the layout's read-only storage buffer, which WGSL's
 * uniformity analysis treats as uniform.
 */
import {
  KEYS_SEEN_WGSL,
  SCALAR_NO_MAX,
  type ScalarFlashConfig,
  indent,
  scalarFlashParts,
} from '../flash-wgsl-scalar.js';
import { type SparseKernelShape, sparseLayoutWgsl } from './block-sparse-wgsl-layout.js';

export function scalarBlockSparseWgsl(c: ScalarFlashConfig, shape: SparseKernelShape): string {
  const { blockK: BK, workgroupSize: WG } = c;
  const k = scalarFlashParts(c);
  const G = shape.pvGroupRows;
  const pv = G > 0;
  if (pv && WG % G !== 0) throw new Error(`pv group of ${G} rows does not divide the tile of ${WG}`);
  const NG = pv ? WG / G : 0;
  return /* wgsl */ `${k.declarations}
${sparseLayoutWgsl(shape)}
${
  pv
    ? `
var<workgroup> pvKeep: array<atomic<u32>, ${NG}>;
var<workgroup> pvAny: array<atomic<u32>, ${NG}>;`
    : ''
}

${KEYS_SEEN_WGSL}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let b = wid.z;
  let h = wid.y;
  let qb = wid.x;
  let hk = h / P.groupSize;
  let lset = layoutSet(b, h);
  // rows [u.x, u.y) of the query block, kept CSR entries [u.z, u.w); uniform (read-only storage)
  let u = vec4<u32>(queryBounds(lset, qb), rowRange(lset, qb));
  let kvBase = b * P.kvBatchStride + hk * P.kvHeadStride;${
    pv
      ? `
  let threshold = pvThreshold(h);
  var tested = 0u;
  var skipped = 0u;`
      : ''
  }
  for (var c0 = u.x; c0 < u.y; c0 += ${WG}u) {
    let row = c0 + tid;
    let valid = row < u.y;
    let qBase = b * P.qBatchStride + h * P.qHeadStride + row * P.qTokenStride;
${indent(k.rowSetup, 2)}
    var m = ${SCALAR_NO_MAX};
    var l = 0.0;
    let kept = select(0u, keysSeen(i32(row)), valid);
    // the chunk's last row sees the most keys (the causal count is nondecreasing in the row)
    let kEnd = keysSeen(i32(min(c0 + ${WG}u, u.y)) - 1);
    for (var ce = u.z; ce < u.w; ce++) {
      let kb = keyBounds(lset, LW[SP.colOff + ce]);${
        pv
          ? `
      // the last SP.exemptLast kept blocks are always computed (the released kernels' loop, §1.3)
      let testBlock = ce + SP.exemptLast < u.w;`
          : ''
      }
      for (var k0 = kb.x; k0 < min(kb.y, kEnd); k0 += ${BK}u) {
        workgroupBarrier();${
          pv
            ? `
        if (tid < ${NG}u) {
          atomicStore(&pvKeep[tid], 0u);
          atomicStore(&pvAny[tid], 0u);
        }`
            : ''
        }
${indent(k.stageTile('kb.y'), 2)}
        workgroupBarrier();
        let lim = min(kept, kb.y);
        let n = min(${BK}u, lim - min(k0, lim));
${indent(k.scoreDecl, 8)}
        if (n > 0u) {
${indent(k.scoreLoop, 10)}
        }${
          pv
            ? `
        var doPv = true;
        if (testBlock) {
          let g = tid / ${G}u;
          if (n > 0u) {
            atomicStore(&pvAny[g], 1u);
            // stage 2: this row votes to compute when (m_local − m_prev) + pvthreshd > 0
            if ((tileMax - m) + threshold > 0.0) { atomicStore(&pvKeep[g], 1u); }
          }
          workgroupBarrier();
          doPv = atomicLoad(&pvKeep[g]) != 0u;
          if (tid % ${G}u == 0u && atomicLoad(&pvAny[g]) != 0u) {
            tested += 1u;
            if (!doPv) { skipped += 1u; }
          }
        }`
            : ''
        }
        if (n > 0u) {
${indent(k.update(pv ? 'doPv' : undefined), 10)}
          m = mNew;
        }
      }
    }
${indent(k.epilogue, 2)}
  }${
    pv
      ? `
  if (tid % ${G}u == 0u && tested > 0u) {
    atomicAdd(&pvCounts[0], tested);
    atomicAdd(&pvCounts[1], skipped);
  }`
      : ''
  }
}
`;
}
