/**
 * The single definition of causal masking. The float64 oracle, the CPU kernel and the WGSL generators
 * all ask this file how many keys a query row sees, so the backends cannot disagree on the diagonal.
 */
import type { AttentionProblem, CausalAlignment } from './options.js';

/**
 * The number of leading keys query i may attend to under a causal mask, clamped to [0, Nk]: key j is
 * kept iff j < keptKeys(i, …). Alignments as in the research notes (sageattention.md §6.3):
 * - 'top-left' keeps j ≤ i (PyTorch SDPA, SageAttention2);
 * - 'bottom-right' keeps j ≤ i + Nk − Nq (FlashAttention ≥ 2.1, SageAttention3 `col_limit_causal`), so
 *   with Nq > Nk the first Nq − Nk rows keep no key.
 * The count is nondecreasing in i, so the last row of a query tile bounds the keys the whole tile needs
 * (what lets a kernel skip key tiles wholly above the diagonal).
 */
export function keptKeys(i: number, tokensQ: number, tokensKv: number, alignment: CausalAlignment): number {
  const limit = alignment === 'top-left' ? i + 1 : i + 1 + tokensKv - tokensQ;
  return Math.min(tokensKv, Math.max(0, limit));
}

/** The number of leading keys query i sees in a resolved problem: keptKeys when causal, else all Nk. */
export function visibleKeys(
  i: number,
  p: Pick<AttentionProblem, 'causal' | 'causalAlignment' | 'tokensQ' | 'tokensKv'>,
): number {
  return p.causal ? keptKeys(i, p.tokensQ, p.tokensKv, p.causalAlignment) : p.tokensKv;
}
