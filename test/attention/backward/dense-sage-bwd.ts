/**
 * An independent, dense re-derivation of SageBwd's numerics (SA3 Alg. 2–3, sageattention.md §8) for the
 * pinning tests: no tiling loops shared with src/, no src/ quantizer, fp16 through numerics' encode /
 * decode rather than accumulate.ts's roundFp16. Each numeric step is written out from its definition:
 *
 * - smoothing: K in float32, mean summed in float64 and stored as float32, K − mean stored as float32;
 * - Q, K, V per block: δ = fround(max(amax, fround(1e-7)) / 127), code = round(fround(x / δ)) ∈ ±127;
 * - P̃ per token per key block: m_j the running max after block j, P̃ = fround(exp(S − m_j)),
 *   s_P = fround(exp(rowmax_j − m_j) / 127), P̂ = round(fround(P̃ / s_P));
 * - backward tiles (P, dO, dS): δ = fround(amax / 127), no floor, zero tile → 0;
 * - dP 'int8' (ablation): the dO block codes times V̂, × δ_dO·δ_V; dS 'float64' (ablation): dS itself
 *   times K̂ / Q̂;
 * - dP: dO and V rounded once to float16 (clamped to ±65504), products summed per 16 channels in float64 and
 *   accumulated in float32.
 *
 * If src/ changes any of these (a block size, a scale formula, a rounding, the dP format, the smooth-K
 * term), its gradients stop matching these to 1e-10 relative.
 */
import { decode } from '../../../src/numerics/decode.js';
import { encode } from '../../../src/numerics/encode.js';

export interface DenseOptions {
  blockQ: number;
  blockK: number;
  sigma: number;
  causal: boolean;
  /** 'bottom-right' alignment: key j visible to query i iff j ≤ i + nk − nq. */
  rounding: 'nearest-even' | 'half-away';
  smoothK: boolean;
  correction: boolean;
  dP: 'fp16' | 'int8' | 'float64';
  dS: 'int8' | 'float64';
}

export interface DenseResult {
  o: Float64Array;
  dq: Float64Array;
  dk: Float64Array;
  dv: Float64Array;
  /** The per-block scales of Q, K (smoothed), V: [bh, blocks]. */
  qScales: number[];
  kScales: number[];
  vScales: number[];
}

const f = Math.fround;

function round(x: number, mode: DenseOptions['rounding']): number {
  const a = Math.abs(x);
  const fl = Math.floor(a);
  const frac = a - fl;
  let r: number;
  if (mode === 'half-away') r = frac >= 0.5 ? fl + 1 : fl;
  else r = frac > 0.5 || (frac === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  return Math.min(127, x < 0 ? -r : r);
}

/** Codes and the one scale of a block of values (with or without the Q/K/V quantizers' 1e-7 floor). */
function quantBlock(
  values: number[],
  floor: boolean,
  mode: DenseOptions['rounding'],
): { codes: number[]; scale: number } {
  let amax = 0;
  for (const x of values) amax = Math.max(amax, Math.abs(f(x)));
  const scale = floor ? f(Math.max(amax, f(1e-7)) / 127) : f(amax / 127);
  if (scale === 0) return { codes: values.map(() => 0), scale: 0 };
  return { codes: values.map((x) => round(f(f(x) / scale), mode)), scale };
}

/** An [n × c] matrix in blocks of `block` rows: integer codes, each row's block scale, the scales. */
function quantRows(
  x: Float64Array,
  off: number,
  n: number,
  c: number,
  block: number,
  mode: DenseOptions['rounding'],
): { codes: Float64Array; rowScale: Float64Array; scales: number[] } {
  const codes = new Float64Array(n * c);
  const rowScale = new Float64Array(n);
  const scales: number[] = [];
  for (let t0 = 0; t0 < n; t0 += block) {
    const t1 = Math.min(n, t0 + block);
    const slice = Array.from(x.subarray(off + t0 * c, off + t1 * c));
    const qb = quantBlock(slice, true, mode);
    qb.codes.forEach((v, i) => (codes[t0 * c + i] = v));
    for (let t = t0; t < t1; t++) rowScale[t] = qb.scale;
    scales.push(qb.scale);
  }
  return { codes, rowScale, scales };
}

/**
 * x rounded once to the nearest half (ties to the even code), clamped to ±65504. encode works from
 * float32, and float64 → float32 → float16 can round twice, so the neighbours of its result are
 * checked against x itself.
 */
function half(x: number): number {
  const clamped = Math.max(-65504, Math.min(65504, x));
  const code = encode('float16', new Float32Array([clamped]))[0];
  let best = NaN;
  let bestCode = -1;
  for (const c of [code - 1, code, code + 1]) {
    if (c < 0 || c > 0xffff || (c & 0x7fff) > 0x7bff) continue;
    const h = decode('float16', new Uint16Array([c]))[0];
    if (Math.sign(h) !== Math.sign(clamped) && h !== 0) continue;
    const err = Math.abs(h - clamped);
    const bestErr = Math.abs(best - clamped);
    if (Number.isNaN(best) || err < bestErr || (err === bestErr && (c & 1) === 0)) {
      best = h;
      bestCode = c;
    }
  }
  return bestCode < 0 ? NaN : best;
}

/** SageBwd forward and backward for q [bh, nq, d], k [bh, nk, d], v [bh, nk, dv] and cotangent g. */
export function denseSageBwd(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  g: Float64Array,
  dims: { bh: number; nq: number; nk: number; d: number; dv: number },
  o: DenseOptions,
): DenseResult {
  const { bh, nq, nk, d, dv } = dims;
  const out = new Float64Array(bh * nq * dv);
  const dq = new Float64Array(bh * nq * d);
  const dk = new Float64Array(bh * nk * d);
  const dvOut = new Float64Array(bh * nk * dv);
  const qScales: number[] = [];
  const kScales: number[] = [];
  const vScales: number[] = [];
  const visible = (i: number) => (o.causal ? Math.max(0, Math.min(nk, i + 1 + nk - nq)) : nk);

  for (let b = 0; b < bh; b++) {
    // smoothing (float32 values, float64 sum, float32 mean and difference)
    const kf = new Float64Array(nk * d);
    const mean = new Float64Array(d);
    for (let t = 0; t < nk; t++) for (let x = 0; x < d; x++) kf[t * d + x] = f(k[(b * nk + t) * d + x]);
    if (o.smoothK) {
      for (let x = 0; x < d; x++) {
        let s = 0;
        for (let t = 0; t < nk; t++) s += kf[t * d + x];
        mean[x] = f(s / nk);
      }
      for (let t = 0; t < nk; t++) for (let x = 0; x < d; x++) kf[t * d + x] = f(kf[t * d + x] - mean[x]);
    }
    const Q = quantRows(q, b * nq * d, nq, d, o.blockQ, o.rounding);
    const K = quantRows(kf, 0, nk, d, o.blockK, o.rounding);
    const V = quantRows(v, b * nk * dv, nk, dv, o.blockK, o.rounding);
    qScales.push(...Q.scales);
    kScales.push(...K.scales);
    vScales.push(...V.scales);

    // logits, dense
    const S = new Float64Array(nq * nk);
    for (let i = 0; i < nq; i++) {
      for (let j = 0; j < nk; j++) {
        let dot = 0;
        for (let x = 0; x < d; x++) dot += Q.codes[i * d + x] * K.codes[j * d + x];
        S[i * nk + j] = dot * (Q.rowScale[i] * K.rowScale[j] * o.sigma);
      }
    }

    // forward: per row, prefix maxima over key blocks
    const L = new Float64Array(nq);
    for (let i = 0; i < nq; i++) {
      const n = visible(i);
      if (n === 0) {
        L[i] = -Infinity;
        continue;
      }
      const mj: number[] = [];
      let m = -Infinity;
      for (let j0 = 0; j0 < n; j0 += o.blockK) {
        for (let j = j0; j < Math.min(n, j0 + o.blockK); j++) m = Math.max(m, S[i * nk + j]);
        mj.push(m);
      }
      const mLast = m;
      let l = 0;
      const acc = new Float64Array(dv);
      mj.forEach((mBlock, blk) => {
        const j0 = blk * o.blockK;
        const j1 = Math.min(n, j0 + o.blockK);
        let rowMax = -Infinity;
        for (let j = j0; j < j1; j++) rowMax = Math.max(rowMax, S[i * nk + j]);
        const sP = f(Math.exp(rowMax - mBlock) / 127);
        const w = Math.exp(mBlock - mLast);
        let rowSum = 0;
        const pv = new Float64Array(dv);
        for (let j = j0; j < j1; j++) {
          const p = Math.exp(S[i * nk + j] - mBlock);
          rowSum += p;
          const code = sP > 0 ? round(f(f(p) / sP), o.rounding) : 0;
          for (let x = 0; x < dv; x++) pv[x] += code * V.codes[j * dv + x];
        }
        l += w * rowSum;
        for (let x = 0; x < dv; x++) acc[x] += w * pv[x] * (sP * V.rowScale[j0]);
      });
      for (let x = 0; x < dv; x++) out[(b * nq + i) * dv + x] = acc[x] / l;
      L[i] = mLast + Math.log(l);
    }

    // backward, dense matrices then per-tile quantization
    const P = new Float64Array(nq * nk);
    const dP = new Float64Array(nq * nk);
    const dS = new Float64Array(nq * nk);
    for (let i = 0; i < nq; i++) {
      let D = 0;
      for (let x = 0; x < dv; x++) D += g[(b * nq + i) * dv + x] * out[(b * nq + i) * dv + x];
      for (let j = 0; j < visible(i); j++) {
        P[i * nk + j] = Math.exp(S[i * nk + j] - L[i]);
        let dp = 0;
        if (o.dP === 'int8') {
          const i0 = i - (i % o.blockQ);
          const i1 = Math.min(nq, i0 + o.blockQ);
          const dOb = quantBlock(
            Array.from(g.subarray((b * nq + i0) * dv, (b * nq + i1) * dv)),
            false,
            o.rounding,
          );
          for (let x = 0; x < dv; x++) dp += dOb.codes[(i - i0) * dv + x] * V.codes[j * dv + x];
          dp *= dOb.scale * V.rowScale[j];
        } else if (o.dP === 'fp16') {
          for (let x0 = 0; x0 < dv; x0 += 16) {
            let s = 0;
            for (let x = x0; x < Math.min(dv, x0 + 16); x++) {
              s += half(g[(b * nq + i) * dv + x]) * half(v[(b * nk + j) * dv + x]);
            }
            dp = f(dp + s);
          }
        } else {
          for (let x = 0; x < dv; x++) dp += g[(b * nq + i) * dv + x] * v[(b * nk + j) * dv + x];
        }
        dP[i * nk + j] = dp;
        dS[i * nk + j] = P[i * nk + j] * (dp - D);
      }
    }
    for (let i0 = 0; i0 < nq; i0 += o.blockQ) {
      const i1 = Math.min(nq, i0 + o.blockQ);
      const dOb = quantBlock(
        Array.from(g.subarray((b * nq + i0) * dv, (b * nq + i1) * dv)),
        false,
        o.rounding,
      );
      for (let j0 = 0; j0 < nk; j0 += o.blockK) {
        const j1 = Math.min(nk, j0 + o.blockK);
        const pVals: number[] = [];
        const sVals: number[] = [];
        for (let i = i0; i < i1; i++) {
          for (let j = j0; j < j1; j++) {
            pVals.push(P[i * nk + j]);
            sVals.push(dS[i * nk + j]);
          }
        }
        const Pq = quantBlock(pVals, false, o.rounding);
        const Sq = o.dS === 'int8' ? quantBlock(sVals, false, o.rounding) : { codes: sVals, scale: 1 };
        const cols = j1 - j0;
        for (let j = j0; j < j1; j++) {
          for (let x = 0; x < dv; x++) {
            let acc = 0;
            for (let i = i0; i < i1; i++)
              acc += Pq.codes[(i - i0) * cols + j - j0] * dOb.codes[(i - i0) * dv + x];
            dvOut[(b * nk + j) * dv + x] += acc * (Pq.scale * dOb.scale);
          }
          for (let x = 0; x < d; x++) {
            let acc = 0;
            for (let i = i0; i < i1; i++) acc += Sq.codes[(i - i0) * cols + j - j0] * Q.codes[i * d + x];
            dk[(b * nk + j) * d + x] += acc * (o.sigma * Sq.scale * Q.rowScale[i0]);
          }
        }
        for (let i = i0; i < i1; i++) {
          for (let x = 0; x < d; x++) {
            let acc = 0;
            for (let j = j0; j < j1; j++) acc += Sq.codes[(i - i0) * cols + j - j0] * K.codes[j * d + x];
            dq[(b * nq + i) * d + x] += acc * (o.sigma * Sq.scale * K.rowScale[j0]);
          }
          if (o.smoothK && o.correction) {
            let rs = 0;
            for (let j = j0; j < j1; j++) rs += dS[i * nk + j];
            for (let x = 0; x < d; x++) dq[(b * nq + i) * d + x] += o.sigma * rs * mean[x];
          }
        }
      }
    }
  }
  return { o: out, dq, dk, dv: dvOut, qScales, kScales, vScales };
}
