/**
 * The uniform block every WGSL attention kernel reads: problem sizes, element strides of the layout,
 * the softmax scale in log2 units and the causal diagonal. One packer and one WGSL struct, so the
 * generators and the dispatcher cannot disagree on field order.
 */
import type { AttentionProblem } from './options.js';

/** WGSL declaration of the parameter block (binding 0 of group 0 in every attention kernel). */
export const FLASH_PARAMS_WGSL = /* wgsl */ `
struct Params {
  batch: u32, headsQ: u32, headsKv: u32, tokensQ: u32,
  tokensKv: u32, groupSize: u32, qTokenStride: u32, qHeadStride: u32,
  qBatchStride: u32, kvTokenStride: u32, kvHeadStride: u32, kvBatchStride: u32,
  scaleLog2: f32, causal: u32, causalShift: i32, qBlocks: u32,
}`;

export const FLASH_PARAMS_BYTES = 64;

/**
 * Element strides of a [B, H, N, D] problem stored in `layout`, for one tensor with `heads` heads.
 */
export function layoutStrides(
  layout: AttentionProblem['layout'],
  heads: number,
  tokens: number,
  headDim: number,
): { token: number; head: number; batch: number } {
  return layout === 'HND'
    ? { token: headDim, head: tokens * headDim, batch: heads * tokens * headDim }
    : { token: heads * headDim, head: headDim, batch: tokens * heads * headDim };
}

/**
 * The causal diagonal as a shift: query i keeps keys j < i + 1 + shift (clamped to [0, Nk]), which is
 * `keptKeys` of causal.ts with shift 0 for 'top-left' and Nk − Nq for 'bottom-right'.
 */
export function causalShift(p: Pick<AttentionProblem, 'causalAlignment' | 'tokensQ' | 'tokensKv'>): number {
  return p.causalAlignment === 'top-left' ? 0 : p.tokensKv - p.tokensQ;
}

/**
 * Packs the parameter block. `headDim` is the stored (possibly padded) head dim that strides use;
 * the scale is the problem's σ, which was fixed from the true head dim.
 */
export function packFlashParams(p: AttentionProblem, storedHeadDim: number, qBlocks: number): ArrayBuffer {
  const buf = new ArrayBuffer(FLASH_PARAMS_BYTES);
  const u = new Uint32Array(buf);
  const f = new Float32Array(buf);
  const i = new Int32Array(buf);
  const qs = layoutStrides(p.layout, p.headsQ, p.tokensQ, storedHeadDim);
  const ks = layoutStrides(p.layout, p.headsKv, p.tokensKv, storedHeadDim);
  u.set([p.batch, p.headsQ, p.headsKv, p.tokensQ, p.tokensKv, p.headsQ / p.headsKv]);
  u.set([qs.token, qs.head, qs.batch, ks.token, ks.head, ks.batch], 6);
  f[12] = p.smScale * Math.LOG2E;
  u[13] = p.causal ? 1 : 0;
  i[14] = causalShift(p);
  u[15] = qBlocks;
  return buf;
}

/**
 * Parameters of the INT8 Q/K kernels (binding 9): how a token index maps to its scale group,
 * group = (i / div)·mul + (i mod 8) / mod8Div (the last term only when mod8Div > 0), which covers the
 * per-block, per-warp, per-thread and per-token granularities of sageattention.md §3.2 and §4.2; the
 * number of scale groups per head; and qFactor, σ·log2e for scales that do not fold it in (1 for
 * per-block Q, whose quantizer multiplied Q by σ·log2e).
 */
export const SAGE_PARAMS_WGSL = /* wgsl */ `
struct SageParams {
  qDiv: u32, qMul: u32, qMod8Div: u32, qGroups: u32,
  kDiv: u32, kMul: u32, kMod8Div: u32, kGroups: u32,
  qFactor: f32, pad0: u32, pad1: u32, pad2: u32,
}`;

export const SAGE_PARAMS_BYTES = 48;

/** One side's token → scale-group rule: group = (i / div)·mul + (i mod 8) / mod8Div (if mod8Div > 0). */
export interface ScaleGroupRule {
  div: number;
  mul: number;
  mod8Div: number;
  /** Scale groups per head. */
  groups: number;
}

export function packSageParams(q: ScaleGroupRule, k: ScaleGroupRule, qFactor: number): ArrayBuffer {
  const buf = new ArrayBuffer(SAGE_PARAMS_BYTES);
  const u = new Uint32Array(buf);
  u.set([q.div, q.mul, q.mod8Div, q.groups, k.div, k.mul, k.mod8Div, k.groups]);
  new Float32Array(buf)[8] = qFactor;
  return buf;
}
