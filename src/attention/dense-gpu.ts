/**
 * Dense attention on WebGPU. A plan picks the kernel tier from the device's capability record and the
 * problem (subgroup-matrix tensor cores → packed f16 → plain f32), generates the WGSL, and records the
 * dispatches; `attentionGpu` runs a plan once. Benchmarks time `plan.record` directly.
 */
import { submitComputePass } from '../gpu/dispatch.js';
import { DTypeError, ShapeError, UnsupportedHeadDimError, UnsupportedOptionError } from '../core/errors.js';
import type { GpuTier } from '../gpu/capabilities.js';
import { emptyFloat16Like, recordCastToFloat16 } from '../gpu/cast.js';
import { BUFFER_USAGE, GpuTensor, emptyGpu, upload } from '../gpu/gpu-tensor.js';
import { Tensor } from '../core/tensor.js';
import type { PQuantFormat, VCodeFormat } from './flash-wgsl-formats.js';
import type { GpuRuntime } from '../gpu/runtime.js';
import {
  FLASH_PARAMS_BYTES,
  SAGE_PARAMS_BYTES,
  type ScaleGroupRule,
  layoutStrides,
  packFlashParams,
  packSageParams,
} from './flash-params.js';
import { recordCopy } from '../gpu/copy.js';
import {
  type MmaFlashConfig,
  defaultMmaConfig,
  mmaBlockQ,
  mmaFlashWgsl,
  mmaWorkgroupBytes,
} from './flash-wgsl-mma.js';
import { type ScalarFlashConfig, scalarBlockK, scalarFlashWgsl } from './flash-wgsl-scalar.js';
import {
  type AttentionOptions,
  type AttentionProblem,
  type AttentionWithLse,
  resolveAttentionProblem,
} from './options.js';

export interface GpuAttentionOptions extends AttentionOptions {
  /**
   * Kernel tier. 'auto' (default) runs float16 inputs on the best f16 tier the device has
   * ('subgroup-matrix' when it offers f16×f16→f32 16×16×16 matrices and the head dim is a multiple of
   * 16, else 'f16', else 'f32') and float32 inputs on the 'f32' tier. Naming an f16 tier for float32
   * inputs converts them to float16 on the GPU first.
   */
  tier?: 'auto' | GpuTier;
  /** Tile parameters of the subgroup-matrix kernel (benchmarks and tests; defaults are tuned). */
  mma?: Partial<Omit<MmaFlashConfig, 'headDim' | 'subgroupSize'>>;
}

export interface GpuAttentionPlan {
  readonly problem: AttentionProblem;
  readonly tier: GpuTier;
  /** Output in q's layout, float32. */
  readonly out: GpuTensor<'float32'>;
  /** Natural-log LSE [B, Hq, Nq], float32. */
  readonly lse: GpuTensor<'float32'>;
  /** Records the conversion (if any) and attention dispatches into a compute pass. */
  record(pass: GPUComputePassEncoder): void;
  /** Records only the attention kernel (inputs already converted or copied), for kernel-only timing. */
  recordKernel(pass: GPUComputePassEncoder): void;
  /** Frees the plan's temporary buffers (not `out` or `lse`). */
  destroyTemporaries(): void;
  /** Query rows per workgroup of the chosen kernel. */
  readonly tileQ: number;
  /** Keys per online-softmax step of the chosen kernel. */
  readonly tileK: number;
}

/**
 * How a flash-style plan differs from dense attention, for kernels built from the same generators and
 * operands (block-sparse attention, sparse/block-sparse-gpu.ts): the generated WGSL, the rows per
 * workgroup, the dispatch's x dimension and extra bindings. Everything else — operand conversion,
 * parameter blocks, INT8 and quantized-PV bindings, the output — is shared.
 */
export interface FlashVariant {
  /** WGSL of the tensor-core kernel for its resolved tile config. */
  mmaCode(cfg: MmaFlashConfig): string;
  /** WGSL of the scalar kernel for its resolved config. */
  scalarCode(cfg: ScalarFlashConfig): string;
  /** Tensor-core tile settings the variant needs (applied before the caller's `mma` option). */
  mmaOverrides?: Partial<MmaFlashConfig>;
  /** Scalar kernel rows per workgroup (default 64). */
  scalarWorkgroup?: number;
  /** Workgroups along x (the Params `qBlocks` field; scratch holds x · rows-per-workgroup rows per head). */
  workgroupsX: number;
  /** Bindings beyond the flash kernels' own. */
  extraEntries: GPUBindGroupEntry[];
}

const SCALAR_WORKGROUP = 64;

/** The runtime q, k and v share; an UnsupportedOptionError if they do not, or one was destroyed. */
export function assertSameRuntime(q: GpuTensor, k: GpuTensor, v: GpuTensor): GpuRuntime {
  if (k.runtime !== q.runtime || v.runtime !== q.runtime) {
    throw new UnsupportedOptionError(
      'q, k and v must live on the same GPU runtime; download and upload to move tensors',
    );
  }
  for (const [name, t] of [
    ['q', q],
    ['k', k],
    ['v', v],
  ] as const) {
    if (t.isDestroyed) throw new UnsupportedOptionError(`${name} was destroyed and can no longer be used`);
  }
  return q.runtime;
}

/** The kernel tier for a problem: the requested one (checked against the device) or the best for its dtype. */
export function chooseTier(
  runtime: GpuRuntime,
  p: AttentionProblem,
  requested: GpuAttentionOptions['tier'],
): GpuTier {
  const tiers = runtime.caps.tiers;
  const mmaFits = p.headDim % 16 === 0 && p.headDim <= 256;
  if (requested === undefined || requested === 'auto') {
    if (p.dtype === 'float32') return 'f32';
    if (tiers.includes('subgroup-matrix') && mmaFits) return 'subgroup-matrix';
    return tiers.includes('f16') ? 'f16' : 'f32';
  }
  if (requested !== 'subgroup-matrix' && requested !== 'f16' && requested !== 'f32') {
    throw new UnsupportedOptionError(
      `tier must be 'auto', 'subgroup-matrix', 'f16' or 'f32'; got ${JSON.stringify(requested)}`,
    );
  }
  if (!tiers.includes(requested)) {
    throw new UnsupportedOptionError(
      `tier '${requested}' is not available on this device (it offers ${tiers.join(', ')}); use tier 'auto'`,
    );
  }
  if (requested === 'subgroup-matrix' && !mmaFits) {
    throw new UnsupportedHeadDimError(
      `the subgroup-matrix tier needs a head dim that is a multiple of 16 and at most 256; got ${p.headDim}. ` +
        `Use tier 'f16' or 'f32' (any head dim), or pad the head dim with zeros and pass smScale = 1/sqrt(${p.headDim}).`,
    );
  }
  return requested;
}

/** Builds a dense attention plan for GPU tensors (nothing is submitted). */
export function planAttentionGpu(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts: GpuAttentionOptions = {},
): GpuAttentionPlan {
  const p = resolveAttentionProblem(q, k, v, opts, ['tier', 'mma']);
  const runtime = assertGpuFloatOperands(q, k, v, p);
  const tier = chooseTier(runtime, p, opts.tier);
  return buildFlashPlan(runtime, p, tier, [q, k, v], opts.mma);
}

/**
 * The checks every float GPU attention kernel makes on its operands: one live runtime, float16 or
 * float32 with one shared dtype, and no nanPolicy 'error' (GPU tensors are not read back). Returns the
 * runtime.
 */
export function assertGpuFloatOperands(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  p: AttentionProblem,
): GpuRuntime {
  const runtime = assertSameRuntime(q, k, v);
  runtime.assertAlive();
  for (const t of [q, k, v]) {
    if (t.dtype !== 'float32' && t.dtype !== 'float16') {
      throw new DTypeError(
        `GPU attention takes float16 or float32 tensors; got ${t.dtype}. Convert on the host first.`,
      );
    }
  }
  if (k.dtype !== q.dtype || v.dtype !== q.dtype) {
    throw new DTypeError(
      `q, k and v must share one dtype on the GPU; got ${q.dtype}, ${k.dtype}, ${v.dtype}`,
    );
  }
  if (p.nanPolicy === 'error') {
    throw new UnsupportedOptionError(
      "nanPolicy 'error' scans host tensors; GPU tensors are not read back. Check the inputs before upload, " +
        "or use nanPolicy 'propagate'.",
    );
  }
  return runtime;
}

/**
 * Scaled Q/K operands of the flash kernels (SageAttention's QKᵀ): scale tensors and the token → scale
 * group rules of each side, and σ·log2e unless the Q scales already hold it. Q and K hold int8 codes,
 * or, with `operands: 'float16'`, f16 values whose scales are per-token factors (FP4 Q/K decoded by
 * sage/fp4-operand-gpu.ts).
 */
export interface Int8QKOperands {
  qScales: GpuTensor<'float32'>;
  kScales: GpuTensor<'float32'>;
  qRule: ScaleGroupRule;
  kRule: ScaleGroupRule;
  qFactor: number;
  /** What Q and K hold: 'int8' codes (default) or 'float16' values. */
  operands?: 'int8' | 'float16';
  /**
   * Every Q and K scale is 1 and qFactor is σ·log2e (NVFP4 Q/K decoded to f16 with their group
   * scales, sage/fp4-operand-gpu.ts): the tensor-core kernel then forms logits as dense attention
   * does, S·σ·log2e, without the per-element factor loads and multiplies (S·(σ·log2e)·1 is the same
   * f32 value; `mma.qkScales: true` keeps the multiplies, for A/B benchmarks). The scalar tiers still
   * multiply.
   */
  unitFactors?: boolean;
  /**
   * Q smoothing (SA2 §3.1; SA3 §7.3): ΔS [B, Hq, ⌈Nq/blockQ⌉, Nk] in q·k units, added to the logits
   * times σ·log2e, with blockQ the smoothing block of Q tokens.
   */
  deltaS?: { values: GpuTensor<'float32'>; blockQ: number };
}

/**
 * Quantized PV operands (SageAttention): P's format, V as one-byte codes with per-channel scales, or
 * as NVFP4 codes with scales per 16 tokens and channel [B, Hkv, ⌈Nk/16⌉, D] (SA3 §7.2).
 */
export interface QuantizedPV {
  pFormat: 'fp16' | PQuantFormat | 'nvfp4';
  /** NVFP4 P̃'s scaling (sage/p-quant.ts): 'two-level' (default) or 'direct'. */
  pScaling?: 'two-level' | 'direct';
  /** Per-channel V scales [B, Hkv, D] (value = code·scale), when V holds codes. */
  vScales?: GpuTensor<'float32'>;
  /** Token mean of V removed by smoothing, [B, Hkv, D], added back to O. */
  vMean?: GpuTensor<'float32'>;
}

/** The one-byte V code formats the kernels decode, by GPU dtype. */
const V_CODE_DTYPES: Record<string, VCodeFormat | 'nvfp4'> = {
  float8_e4m3fn: 'float8_e4m3fn',
  float8_e5m2: 'float8_e5m2',
  int8: 'int8',
  float4_e2m1fn: 'nvfp4',
};

/**
 * The plan every flash-style kernel shares once its problem is validated and its tier chosen: operand
 * buffers (converted to f16 or padded where the tier needs it), the generated kernel, the parameter
 * block and the dispatch. `int8` switches Q and K to int8 codes with scales.
 */
export function buildFlashPlan(
  runtime: GpuRuntime,
  p: AttentionProblem,
  tier: GpuTier,
  [q, k, v]: [GpuTensor, GpuTensor, GpuTensor],
  mma: GpuAttentionOptions['mma'],
  int8?: Int8QKOperands,
  pv?: QuantizedPV,
  variant?: FlashVariant,
): GpuAttentionPlan {
  const vCodes: VCodeFormat | 'nvfp4' | undefined = V_CODE_DTYPES[v.dtype];
  // int8 codes, or float operands (dense attention, FP4 Q/K decoded to f16) with or without scales
  const qkCodes = int8 !== undefined && int8.operands !== 'float16';
  const pFormat = pv?.pFormat ?? 'fp16';
  const sageEpilogue = vCodes !== undefined || pFormat !== 'fp16';
  const limits = runtime.caps.limits;
  for (const [name, t] of [
    ['q', q],
    ['k', k],
    ['v', v],
  ] as const) {
    if (t.byteLength > limits.maxStorageBufferBindingSize) {
      throw new ShapeError(
        `${name} has ${t.byteLength} bytes, above this device's maxStorageBufferBindingSize (${limits.maxStorageBufferBindingSize}); split the batch or heads`,
      );
    }
  }

  const out = emptyGpu(runtime, q.shape, 'float32', 'attention out');
  const lse = emptyGpu(runtime, [p.batch, p.headsQ, p.tokensQ], 'float32', 'attention lse');
  const temporaries: GpuTensor[] = [];
  const empty = p.batch === 0 || p.tokensQ === 0 || p.headsQ === 0 || variant?.workgroupsX === 0;

  // What each kernel input buffer must hold. The subgroup-matrix kernel loads Q fragments of 16 rows
  // straight from global memory; Dawn's robustness clamps a load that reaches past the end of a buffer
  // as a whole (measured on the H100: the last rows of the last head came out wrong), so Q needs 15
  // rows of slack after its last row, and every operand at least one 16×16 f16 matrix (512 bytes),
  // the minimum binding size Dawn derives from the loads.
  // (INT8 Q/K: one byte per element, and a 16×32 int8 matrix is also 512 bytes.)
  const elementBytes = (i: number) => ((qkCodes && i < 2) || (vCodes && i === 2) ? 1 : 2);
  const minBytes = (t: GpuTensor, i: number) => {
    if (tier !== 'subgroup-matrix') return 0;
    const tokenStride = layoutStrides(p.layout, i === 0 ? p.headsQ : p.headsKv, 1, p.headDim).token;
    const slack = i === 0 ? 15 * tokenStride * elementBytes(i) : 0;
    return Math.max(512, t.size * elementBytes(i) + slack);
  };
  // f16 tiers given float32 tensors read converted copies; too-small buffers are copied with slack.
  // Both are refreshed by every record(), so a plan can be re-run on new data. INT8 codes are never
  // converted.
  const needF16 = (t: GpuTensor) => tier !== 'f32' && t.dtype === 'float32';
  const inputs: GpuTensor[] = [q, k, v].map((t, i) => {
    if (needF16(t)) return emptyFloat16Like(t, minBytes(t, i));
    return t.buffer.size >= minBytes(t, i)
      ? t
      : emptyGpu(runtime, t.shape, t.dtype, 'attention operand', minBytes(t, i));
  });
  temporaries.push(...inputs.filter((t, i) => t !== [q, k, v][i]));
  const recordInputs = (pass: GPUComputePassEncoder) => {
    [q, k, v].forEach((t, i) => {
      if (inputs[i] === t) return;
      if (needF16(t)) recordCastToFloat16(t, inputs[i] as GpuTensor<'float16'>, pass);
      else recordCopy(runtime, t.buffer, inputs[i].buffer, t.byteLength, pass);
    });
  };

  let code: string;
  let workgroupsX: number;
  let scratch: GpuTensor | undefined;
  let tileQ: number;
  let tileK: number;
  // whether the kernel reads the Q/K scales (bindings 7–9)
  let factorBindings = int8 !== undefined;
  if (tier === 'subgroup-matrix') {
    const cfg: MmaFlashConfig = {
      ...defaultMmaConfig(p.headDim, limits.maxComputeWorkgroupStorageSize),
      ...variant?.mmaOverrides,
      ...mma,
      headDim: p.headDim,
      subgroupSize: 32,
      qk: qkCodes ? 'i8' : 'f16',
      qkScales: int8 !== undefined && (qkCodes || !int8.unitFactors || mma?.qkScales === true),
      deltaSBlock: int8?.deltaS?.blockQ ?? 0,
      pFormat,
      pScaling: pv?.pScaling ?? 'two-level',
      vFormat: vCodes ?? 'f16',
    };
    if (mmaWorkgroupBytes(cfg) > limits.maxComputeWorkgroupStorageSize) {
      throw new UnsupportedOptionError(
        `subgroup-matrix tiles ${JSON.stringify(mma ?? {})} need ${mmaWorkgroupBytes(cfg)} bytes of workgroup memory; ` +
          `this device allows ${limits.maxComputeWorkgroupStorageSize}. Use smaller blockK or fewer warps.`,
      );
    }
    if (runtime.caps.subgroupMinSize !== 32 || runtime.caps.subgroupMaxSize !== 32) {
      throw new UnsupportedOptionError(
        `the subgroup-matrix kernel assumes subgroups of 32 lanes; this device reports ${runtime.caps.subgroupMinSize}..${runtime.caps.subgroupMaxSize}. Use tier 'f16'.`,
      );
    }
    code = variant ? variant.mmaCode(cfg) : mmaFlashWgsl(cfg);
    factorBindings = cfg.qkScales === true;
    tileQ = mmaBlockQ(cfg);
    tileK = cfg.blockK;
    workgroupsX = variant?.workgroupsX ?? Math.ceil(p.tokensQ / mmaBlockQ(cfg));
    if (!empty) {
      scratch = emptyGpu(
        runtime,
        [p.batch * p.headsQ * workgroupsX * mmaBlockQ(cfg) * p.headDim],
        'float32',
        'attention scratch',
      );
      temporaries.push(scratch);
    }
  } else {
    const shaderF16 = tier === 'f16';
    const blockK = scalarBlockK(p.headDim, shaderF16 ? 2 : 4, limits.maxComputeWorkgroupStorageSize);
    const workgroupSize = variant?.scalarWorkgroup ?? SCALAR_WORKGROUP;
    const cfg: ScalarFlashConfig = {
      // the float operands' storage: q/k/v for dense, q/k for decoded FP4 Q/K, v for INT8 Q/K (with
      // one-byte V codes and INT8 Q/K: the tile type only)
      input:
        vCodes && qkCodes
          ? shaderF16
            ? 'f16'
            : 'f32'
          : tier === 'f16' || (qkCodes ? v : q).dtype === 'float16'
            ? 'f16'
            : 'f32',
      shaderF16,
      headDim: p.headDim,
      blockK,
      workgroupSize,
      qkInt8: qkCodes,
      qkFactors: int8 !== undefined && !qkCodes,
      deltaSBlock: int8?.deltaS?.blockQ ?? 0,
      packedDot: runtime.caps.wgslLanguageFeatures.includes('packed_4x8_integer_dot_product'),
      pFormat,
      pScaling: pv?.pScaling ?? 'two-level',
      vCodes,
    };
    code = variant ? variant.scalarCode(cfg) : scalarFlashWgsl(cfg);
    tileQ = workgroupSize;
    tileK = blockK;
    workgroupsX = variant?.workgroupsX ?? Math.ceil(p.tokensQ / SCALAR_WORKGROUP);
  }
  const maxGroups = limits.maxComputeWorkgroupsPerDimension;
  if (workgroupsX > maxGroups || p.headsQ > maxGroups || p.batch > maxGroups) {
    throw new ShapeError(
      `this problem needs a ${workgroupsX}×${p.headsQ}×${p.batch} dispatch; the device allows ${maxGroups} per dimension. Split the batch or sequence.`,
    );
  }
  const params = runtime.createBuffer(
    FLASH_PARAMS_BYTES,
    BUFFER_USAGE.UNIFORM | BUFFER_USAGE.COPY_DST,
    'attention params',
  );
  runtime.device.queue.writeBuffer(params, 0, packFlashParams(p, p.headDim, workgroupsX));
  let sageParams: GPUBuffer | undefined;
  if (int8) {
    sageParams = runtime.createBuffer(
      SAGE_PARAMS_BYTES,
      BUFFER_USAGE.UNIFORM | BUFFER_USAGE.COPY_DST,
      'int8 params',
    );
    runtime.device.queue.writeBuffer(sageParams, 0, packSageParams(int8.qRule, int8.kRule, int8.qFactor));
  }
  // V scales of 1 and a zero mean stand in where the caller has none
  const [B, Hkv, D] = [p.batch, p.headsKv, p.headDim];
  const vScales = sageEpilogue ? (pv?.vScales ?? constantGpu(runtime, [B, Hkv, D], 1)) : undefined;
  const vMean = sageEpilogue ? (pv?.vMean ?? constantGpu(runtime, [B, Hkv, D], 0)) : undefined;
  for (const t of [vScales, vMean]) if (t && t !== pv?.vScales && t !== pv?.vMean) temporaries.push(t);
  const pipeline = empty ? undefined : runtime.pipeline(code);

  const recordKernel = (pass: GPUComputePassEncoder) => {
    if (!pipeline) return;
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: params } },
      ...inputs.map((t, i) => ({ binding: i + 1, resource: { buffer: t.buffer } })),
      { binding: 4, resource: { buffer: out.buffer } },
      { binding: 5, resource: { buffer: lse.buffer } },
    ];
    if (scratch) entries.push({ binding: 6, resource: { buffer: scratch.buffer } });
    if (vScales && vMean) {
      entries.push(
        { binding: 10, resource: { buffer: vScales.buffer } },
        { binding: 11, resource: { buffer: vMean.buffer } },
      );
    }
    if (int8 && sageParams && factorBindings) {
      entries.push(
        { binding: 7, resource: { buffer: int8.qScales.buffer } },
        { binding: 8, resource: { buffer: int8.kScales.buffer } },
        { binding: 9, resource: { buffer: sageParams } },
      );
    }
    if (int8?.deltaS) entries.push({ binding: 12, resource: { buffer: int8.deltaS.values.buffer } });
    if (variant) entries.push(...variant.extraEntries);
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, runtime.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }));
    pass.dispatchWorkgroups(workgroupsX, p.headsQ, p.batch);
  };

  return {
    problem: p,
    tier,
    out,
    lse,
    record(pass) {
      recordInputs(pass);
      recordKernel(pass);
    },
    recordKernel,
    tileQ,
    tileK,
    destroyTemporaries() {
      for (const t of temporaries) t.destroy();
      temporaries.length = 0;
      params.destroy();
      sageParams?.destroy();
    },
  };
}

function constantGpu(runtime: GpuRuntime, shape: number[], value: number): GpuTensor<'float32'> {
  const n = shape.reduce((a, b) => a * b, 1);
  return upload(runtime, new Tensor(new Float32Array(n).fill(value), shape, 'float32'), 'constant');
}

/** Submits a plan once and frees its temporaries; returns the output (and LSE when it was asked for). */
export function runPlanOnce(
  plan: GpuAttentionPlan,
): GpuTensor<'float32'> | AttentionWithLse<GpuTensor<'float32'>> {
  submitComputePass(plan.out.runtime, (pass) => plan.record(pass));
  // destroying after submit is safe: WebGPU frees a buffer once the work using it has completed
  plan.destroyTemporaries();
  if (plan.problem.returnLse) return { out: plan.out, lse: plan.lse };
  plan.lse.destroy();
  return plan.out;
}

/** Dense attention of GPU tensors; returns GPU tensors (see `attention`). */
export function attentionGpu(
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  opts: GpuAttentionOptions = {},
): GpuTensor<'float32'> | AttentionWithLse<GpuTensor<'float32'>> {
  return runPlanOnce(planAttentionGpu(q, k, v, opts));
}
