/**
 * `sageAttention` on GPU tensors: the same composition as on the host — smooth → quantize → kernel →
 * finalize — with every step on the GPU, recorded into one compute pass: K (and V) token means, Q
 * block means and ΔS (smoothQ, smooth-q-gpu.ts), INT8 Q/K group quantization or NVFP4/MXFP4 Q/K
 * quantization (quantize-fp4-gpu.ts), per-channel FP8/INT8 or NVFP4 V quantization, the kernel
 * (kernel-gpu.ts), and the LSE's smoothing correction σ·(q·k̄) (sageattention.md §6.4).
 *
 * What runs here: every preset (sage1, sage2, sage2++, sage3) and their overrides — INT8 and INT4 Q/K
 * of every granularity, NVFP4 and MXFP4 Q/K (both MXFP4 scale rules), K smoothing, Q smoothing with ΔS,
 * P and V in fp16, E4M3, E5M2, INT8 or NVFP4 (two-level or direct P), V smoothing with quantized V.
 * The GPU accumulates PV in f32 whatever `pvAccum` says (the FP22 and fp16 accumulators are CPU models
 * of the reference hardware), so results agree with the CPU pipeline to the accuracy of those
 * accumulators, and SA2++'s fp16 overflow without range limits cannot happen here. CPU only: qk
 * 'none' (the unquantized ablation), smoothV with fp16 V, nanPolicy 'error'.
 */
import { UnsupportedOptionError } from '../../core/errors.js';
import { floatArrayElement, floatLoaderWgsl, recordDispatch, uniformBuffer } from '../../gpu/dispatch.js';
import type { GpuTensor } from '../../gpu/gpu-tensor.js';
import { log2eSmScale } from '../../quant/sm-scale-fold.js';
import { layoutStrides } from '../flash-params.js';
import { recordResizeLastDim } from '../../gpu/pad-last-dim.js';
import type { VCodeFormat } from '../flash-wgsl-formats.js';
import type { AttentionWithLse } from '../options.js';
import {
  planSageKernelGpu,
  scaleGroupRules,
  type QKOperand,
  type SageKernelGpuOptions,
  type VOperand,
} from './kernel-gpu.js';
import type { ResolvedSage } from './options.js';
import { recordQuantizeFp4Gpu } from './quantize-fp4-gpu.js';
import { recordQuantizeInt8Gpu, recordTokenMeanGpu } from './quantize-qk-gpu.js';
import { recordQuantizeVGpu } from './quantize-v-gpu.js';
import { recordSmoothQGpu } from './smooth-q-gpu.js';

/** Why a resolved configuration cannot run on the GPU, or undefined when it can. */
export function gpuUnsupportedReason({ config }: ResolvedSage): string | undefined {
  if (config.qk.kind === 'none') {
    return "Q/K quantization 'none' (the unquantized ablation; INT8, INT4, NVFP4 and MXFP4 run on the GPU)";
  }
  if (config.smoothV && config.vFormat === 'fp16')
    return 'smoothV with fp16 V (use an FP8, INT8 or NVFP4 vFormat)';
  return undefined;
}

/** LSE += σ·(q·k̄) per row (the K-smoothing correction), in place. */
function lseCorrectionWgsl(input: 'f16' | 'f32', D: number): string {
  return /* wgsl */ `
struct U { heads: u32, headsKv: u32, tokens: u32, tokenStride: u32, headStride: u32, batchStride: u32, smScale: f32, pad: u32 }
@group(0) @binding(0) var<uniform> P: U;
@group(0) @binding(1) var<storage, read> Q: array<${floatArrayElement(input)}>;
@group(0) @binding(2) var<storage, read> KMean: array<f32>;
@group(0) @binding(3) var<storage, read_write> Lse: array<f32>;
${floatLoaderWgsl('ld', 'Q', input)}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  let h = gid.y;
  let b = gid.z;
  if (n >= P.tokens) { return; }
  let q0 = b * P.batchStride + h * P.headStride + n * P.tokenStride;
  let m0 = (b * P.headsKv + h / (P.heads / P.headsKv)) * ${D}u;
  var dot = 0.0;
  for (var d = 0u; d < ${D}u; d++) { dot += ld(q0 + d) * KMean[m0 + d]; }
  let i = (b * P.heads + h) * P.tokens + n;
  Lse[i] = Lse[i] + P.smScale * dot;
}`;
}

/**
 * A benchmark's view into the pipeline's GPU time: with it, each step is recorded in a compute pass
 * of its own, begun with the descriptor `pass(step)` returns (timestamp writes), and `finish` sees the
 * command encoder before it is submitted (to resolve the queries). Steps: 'pad', 'k mean',
 * 'smooth q', 'quantize q/k', 'v mean', 'quantize v', 'kernel' (with the FP4 decodes), 'lse', 'slice'.
 */
export interface SageGpuProfile {
  pass(step: string): GPUComputePassDescriptor;
  finish(encoder: GPUCommandEncoder): void;
}

/** What `recordSageOperandsGpu` leaves for the kernel: quantized operands and the kernel's options. */
export interface SageGpuOperands {
  q: QKOperand;
  k: QKOperand;
  v: VOperand;
  /** K's token mean [B, Hkv, Dp] when K is smoothed (for the LSE correction). */
  kMean?: GpuTensor<'float32'>;
  /** q as the kernel sees it (zero-padded to Dp channels). */
  qPadded: GpuTensor;
  /** The head dim padded to a multiple of 32 (the i8 tensor cores take 32 channels per step). */
  paddedHeadDim: number;
  /** Options for planSageKernelGpu (format, granularity, tiles, ΔS); the caller adds the problem's. */
  kernel: SageKernelGpuOptions;
  /** Frees the temporaries, once the work that reads them is submitted. */
  release(): void;
}

/**
 * Records the preprocessing of `sageAttention` on the GPU — padding to Dp channels, K (and V) token
 * means, Q smoothing with ΔS, Q/K quantization (INT8/INT4 groups or NVFP4/MXFP4), V quantization —
 * into `pass` (or, with `step`, into the pass each step's name begins).
 */
export function recordSageOperandsGpu(
  qIn: GpuTensor,
  kIn: GpuTensor,
  vIn: GpuTensor,
  resolved: ResolvedSage,
  pass: GPUComputePassEncoder,
  step: (name: string) => GPUComputePassEncoder = () => pass,
): SageGpuOperands {
  const why = gpuUnsupportedReason(resolved);
  if (why) {
    throw new UnsupportedOptionError(
      `this SageAttention configuration needs ${why}, which runs on the CPU backend only; download() the tensors or change that option`,
    );
  }
  const { problem: p, config } = resolved;
  let [q, k, v] = [qIn, kIn, vIn];
  if (p.nanPolicy === 'error') {
    throw new UnsupportedOptionError("nanPolicy 'error' scans host tensors; GPU tensors are not read back");
  }
  for (const t of [k, v]) {
    if (t.runtime !== q.runtime) throw new UnsupportedOptionError('q, k and v must live on one GPU runtime');
  }
  // INT4 codes (one per byte, in [−7, 7]) go through the INT8 kernel unchanged: the product is exact
  const bits = config.qk.kind === 'int4' ? 4 : 8;
  const granularity =
    config.qk.kind === 'int8' || config.qk.kind === 'int4' ? config.qk.granularity : 'per-thread';
  const tiles = { blockQ: config.blockQ, warpQ: config.warpQ, blockK: config.blockK, warpK: config.warpK };
  const rules = scaleGroupRules(granularity, p.tokensQ, p.tokensKv, tiles);
  const releases: (() => void)[] = [];
  const temporaries: GpuTensor[] = [];
  // head dims that are not a multiple of 32 are zero-padded (the i8 tensor cores take 32 channels per
  // step; zeros add nothing to q·k or to O) and the output sliced back; σ stays the true 1/√D
  const D = p.headDim;
  const Dp = Math.ceil(D / 32) * 32;
  if (Dp !== D) {
    const padded = [q, k, v].map((t) => recordResizeLastDim(t, Dp, pass));
    for (const x of padded) {
      releases.push(x.release);
      temporaries.push(x.out);
    }
    [q, k, v] = padded.map((x) => x.out);
  }
  let kMean: GpuTensor<'float32'> | undefined;
  let at = step('k mean');
  if (config.smoothK) {
    const m = recordTokenMeanGpu(k, p.layout, at);
    kMean = m.mean;
    releases.push(m.release);
    temporaries.push(m.mean);
  }
  // Q smoothing (SA2 §3.1, SA3 §7.3): block means of Q and ΔS against the smoothed K
  let smoothQ: ReturnType<typeof recordSmoothQGpu> | undefined;
  at = step('smooth q');
  if (config.smoothQ) {
    smoothQ = recordSmoothQGpu(q, k, { layout: p.layout, blockQ: config.blockQ, kMean }, at);
    releases.push(smoothQ.release);
    temporaries.push(smoothQ.qMean, smoothQ.deltaS);
  }
  const qMean = smoothQ ? { mean: smoothQ.qMean, meanBlock: config.blockQ } : {};
  let qq: QKOperand & { release: () => void };
  let kq: QKOperand & { release: () => void };
  const qk = config.qk;
  at = step('quantize q/k');
  if (qk.kind === 'nvfp4' || qk.kind === 'mxfp4') {
    const fp4 = {
      layout: p.layout,
      format: qk.kind,
      axis: 'channels',
      ...(qk.kind === 'mxfp4' ? { scaleRule: qk.scaleRule ?? 'truncation-free' } : {}),
    } as const;
    qq = recordQuantizeFp4Gpu(q, { ...fp4, ...qMean }, at);
    kq = recordQuantizeFp4Gpu(k, { ...fp4, mean: kMean }, at);
  } else {
    const prescale = granularity === 'per-block' ? log2eSmScale(p.smScale) : 1;
    const common = { layout: p.layout, granularity, rounding: config.rounding, bits } as const;
    qq = recordQuantizeInt8Gpu(q, { ...common, rule: rules.q, prescale, ...qMean }, at);
    kq = recordQuantizeInt8Gpu(k, { ...common, rule: rules.k, prescale: 1, mean: kMean }, at);
  }
  releases.push(qq.release, kq.release);
  temporaries.push(qq.codes, qq.scales, kq.codes, kq.scales);

  let vOperand: VOperand = v;
  if (config.vFormat !== 'fp16') {
    let vMean: GpuTensor<'float32'> | undefined;
    at = step('v mean');
    if (config.smoothV) {
      const m = recordTokenMeanGpu(v, p.layout, at);
      vMean = m.mean;
      releases.push(m.release);
      temporaries.push(m.mean);
    }
    // NVFP4 V: groups of 16 tokens per channel (SA3 §7.2); FP8/INT8 V: per channel (SA2 §4.4)
    at = step('quantize v');
    const vq =
      config.vFormat === 'nvfp4'
        ? recordQuantizeFp4Gpu(v, { layout: p.layout, format: 'nvfp4', axis: 'tokens', mean: vMean }, at)
        : recordQuantizeVGpu(
            v,
            {
              layout: p.layout,
              format: config.vFormat as VCodeFormat,
              scaleMax: config.vScaleMax ?? 448,
              mean: vMean,
            },
            at,
          );
    releases.push(vq.release);
    temporaries.push(vq.codes, vq.scales);
    vOperand = { codes: vq.codes, scales: vq.scales, mean: vMean };
  }
  return {
    q: { codes: qq.codes, scales: qq.scales },
    k: { codes: kq.codes, scales: kq.scales },
    v: vOperand,
    kMean,
    qPadded: q,
    paddedHeadDim: Dp,
    kernel: {
      granularity,
      qkFormat: qk.kind === 'nvfp4' || qk.kind === 'mxfp4' ? qk.kind : 'int8',
      pFormat: config.pFormat,
      pScaling: config.pScaling,
      deltaS: smoothQ?.deltaS,
      ...tiles,
    },
    release() {
      for (const r of releases) r();
      for (const t of temporaries) t.destroy();
    },
  };
}

/**
 * Records LSE += σ·(q·k̄) per row (the K-smoothing correction of the LSE, §6.4) into `lse` in place;
 * returns what to free once submitted.
 */
export function recordLseCorrectionGpu(
  ops: SageGpuOperands,
  p: ResolvedSage['problem'],
  lse: GpuTensor<'float32'>,
  pass: GPUComputePassEncoder,
): () => void {
  if (!ops.kMean || p.tokensQ === 0) return () => undefined;
  const runtime = lse.runtime;
  const Dp = ops.paddedHeadDim;
  const st = layoutStrides(p.layout, p.headsQ, p.tokensQ, Dp);
  const words = new ArrayBuffer(32);
  new Uint32Array(words).set([p.headsQ, p.headsKv, p.tokensQ, st.token, st.head, st.batch]);
  new Float32Array(words)[6] = p.smScale;
  const params = uniformBuffer(runtime, words, 'lse correction');
  const code = lseCorrectionWgsl(ops.qPadded.dtype === 'float16' ? 'f16' : 'f32', Dp);
  recordDispatch(
    runtime,
    pass,
    code,
    [params, ops.qPadded.buffer, ops.kMean.buffer, lse.buffer],
    [Math.ceil(p.tokensQ / 64), p.headsQ, p.batch],
  );
  return () => params.destroy();
}

export function sageAttentionGpu(
  qIn: GpuTensor,
  kIn: GpuTensor,
  vIn: GpuTensor,
  resolved: ResolvedSage,
  profile?: SageGpuProfile,
): GpuTensor<'float32'> | AttentionWithLse<GpuTensor<'float32'>> {
  const { problem: p } = resolved;
  const runtime = qIn.runtime;
  const enc = runtime.device.createCommandEncoder();
  let pass = enc.beginComputePass(profile?.pass('pad'));
  // a new pass per step when profiled (a pass boundary orders the steps as the dispatches' barriers do)
  const step = (name: string) => {
    if (profile) {
      pass.end();
      pass = enc.beginComputePass(profile.pass(name));
    }
    return pass;
  };
  let ops: SageGpuOperands;
  try {
    ops = recordSageOperandsGpu(qIn, kIn, vIn, resolved, pass, step);
  } catch (e) {
    pass.end();
    throw e;
  }
  const plan = planSageKernelGpu(ops.q, ops.k, ops.v, {
    layout: p.layout,
    causal: p.causal,
    causalAlignment: p.causalAlignment,
    smScale: p.smScale,
    returnLse: p.returnLse,
    ...ops.kernel,
  });
  plan.record(step('kernel'));
  const releases: (() => void)[] = [];
  if (p.returnLse) releases.push(recordLseCorrectionGpu(ops, p, plan.lse, step('lse')));
  let out = plan.out;
  step('slice');
  if (ops.paddedHeadDim !== p.headDim) {
    const sliced = recordResizeLastDim(plan.out, p.headDim, pass);
    releases.push(sliced.release, () => plan.out.destroy());
    out = sliced.out;
  }
  pass.end();
  profile?.finish(enc);
  runtime.device.queue.submit([enc.finish()]);
  plan.destroyTemporaries();
  ops.release();
  for (const r of releases) r();
  if (p.returnLse) return { out, lse: plan.lse };
  plan.lse.destroy();
  return out;
}
