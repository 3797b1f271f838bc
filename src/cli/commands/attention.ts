/**
 * `sparq attention`: runs one attention method of sparq on q, k and v read from a safetensors file (for
 * instance tensors captured from a real model), writes the output and optionally the LSE, and with
 * `--compare` scores it against the float64 oracle. Only the methods that exist are offered; svg and
 * svg2 take the clip's geometry (--frames, --height, --width, --prefix-tokens); sparge takes
 * SpargeAttn's hyperparameters or a calibrated parameter file.
 */
import { readFileSync } from 'node:fs';
import { DTypeError, UnsupportedOptionError } from '../../core/errors.js';
import { isCodedFloat } from '../../core/dtype.js';
import { type Tensor, formatShape, tensor } from '../../core/tensor.js';
import type { Layout } from '../../core/layout.js';
import { describeAdapter } from '../../gpu/capabilities.js';
import { type GpuRuntime, acquireGpu } from '../../gpu/runtime.js';
import { type GpuTensor, download, upload } from '../../gpu/gpu-tensor.js';
import { attentionCpu } from '../../attention/dense-cpu.js';
import { planAttentionGpu, runPlanOnce } from '../../attention/dense-gpu.js';
import { attentionReference } from '../../attention/reference.js';
import { metrics } from '../../attention/metrics.js';
import {
  type AttentionOptions,
  type AttentionResult,
  type CausalAlignment,
  resolveAttentionProblem,
} from '../../attention/options.js';
import { sageAttention } from '../../attention/sage/sage-attention.js';
import { gpuUnsupportedReason } from '../../attention/sage/sage-attention-gpu.js';
import { resolveSageOptions } from '../../attention/sage/options.js';
import { SAGE_PRESETS } from '../../attention/sage/presets.js';
import { svgAttention } from '../../attention/sparse/svg.js';
import { svg2Attention } from '../../attention/sparse/svg2.js';
import { type SpargeAttentionOptions, spargeAttention } from '../../attention/sparse/sparge-attention.js';
import { type SpargeParams, spargeParamsFromJson } from '../../attention/sparse/sparge-params.js';
import { readSafetensors, writeSafetensorsFile } from '../../io/safetensors-file.js';
import { parseCount } from '../parse-numbers.js';
import { type CliIo, type CommandArgs, EXIT, type OptionSpec, UsageError } from '../command.js';
import { sparqVersion } from '../version.js';
import { resultsJson } from '../../io/json-results.js';

const METHODS = ['dense', ...SAGE_PRESETS, 'svg', 'svg2', 'sparge'] as const;
type Method = (typeof METHODS)[number];
const BACKEND_CHOICES = ['auto', 'cpu', 'webgpu'] as const;

export const name = 'attention';
export const summary = 'Run an attention method on q, k, v from a safetensors file; compare with the oracle';
export const usage = `Usage: sparq attention --in <qkv.safetensors> --method <${METHODS.join('|')}>
                       [--out <o.safetensors>] [--backend cpu|webgpu|auto] [--layout HND|NHD]
                       [--causal] [--causal-alignment top-left|bottom-right] [--sm-scale <x>]
                       [--lse] [--compare] [--q <name>] [--k <name>] [--v <name>] [--json]
                       svg, svg2: [--frames F --height H --width W] [--prefix-tokens P]
                       svg: [--density s]   svg2: [--q-clusters C] [--k-clusters C] [--top-p p]
                       sparge: [--topk p | --cdf-threshold t] [--sim-threshold x] [--pv-threshold x]
                               [--params <calibrated.json>]

Runs one attention method on the q, k and v tensors of a safetensors file, e.g. activations captured
from a real model. Methods: dense (exact softmax attention, FlashAttention-2 tiling) and the
SageAttention presets sage1, sage2, sage2++ and sage3, and the sparse video methods svg (Sparse
VideoGen: per-head spatial/temporal band from online profiling) and svg2 (SVG2: k-means clusters of Q
and K, top-p cluster pairs), which attend a clip to itself: q, k, v hold P prefix (text) tokens and
then F frames of H·W tokens, frame-major; and sparge (SpargeAttn: a block map predicted from pooled
Q and K blocks, 128 × 64 blocks, then block-sparse attention with its PV skip).

Inputs may have any float dtype; q, k and v may differ. The CPU backend takes float64, float32,
float16 and bfloat16 as they are (other float formats, or mixed dtypes, are converted to float32); the
WebGPU kernels take float16, so other dtypes are rounded to float16 before the upload.

Options:
  --in <file>           The safetensors file holding q, k and v (required).
  --method <name>       ${METHODS.join(', ')} (required).
  --out <file>          Write the output as float32 tensor 'o' (and 'lse' with --lse), with metadata
                        naming the method, backend, adapter, kernel tier and sparq version. The file is
                        written atomically (a temporary file renamed into place).
  --backend <name>      cpu, webgpu or auto (default auto: WebGPU when an adapter exists and the method
                        runs there, else the CPU, saying why on stderr). Every method runs on both.
  --layout <layout>     HND = [B, H, N, D] (default) or NHD = [B, N, H, D]; the output has the same.
  --causal              Causal mask.
  --causal-alignment <a>  top-left (default; key j kept iff j <= i) or bottom-right (j <= i + Nk - Nq).
  --sm-scale <x>        Softmax scale, a finite number > 0 (default 1/sqrt(D)).
  --lse                 Also compute the natural-log log-sum-exp per row, [B, Hq, Nq].
  --compare             Also compute the float64 oracle on the same inputs (after any conversion) and
                        report cosine similarity, relative L1, RMSE (and the largest LSE error with
                        --lse).
  --q, --k, --v <name>  Tensor names in the file (default q, k, v).
  --frames, --height, --width <n>  svg: the clip's latent frames and frame size (required for svg).
  --prefix-tokens <n>   svg, svg2: text tokens before the video tokens, attended densely (default 0).
  --density <s>         svg: fraction of the attention matrix its band keeps (default 0.25).
  --q-clusters, --k-clusters <n>  svg2: k-means clusters of Q and of K per head (default 50, 200).
  --top-p <p>           svg2: attention mass of the kept cluster pairs (default 0.9).
  --topk <p>            sparge: keep ⌊p·#key blocks⌋ blocks per query block (default 0.5).
  --cdf-threshold <t>   sparge: keep the blocks within cumulative probability t instead (TopCdf).
  --sim-threshold <x>   sparge: block self-similarity threshold θ in [-1, 1] (default -0.1 with
                        --topk, 0.6 with --cdf-threshold).
  --pv-threshold <x>    sparge: stage-2 PV-skip threshold pvthreshd (default 50: almost never skips).
  --params <file>       sparge: per-head parameters from calibrateSparge (JSON).
  --json                Print one JSON document on stdout and nothing else. Non-finite numbers are
                        written as the strings "Infinity", "-Infinity" and "NaN".
  -h, --help            Show this help.

The reported time is the wall time of one run of the method, including the upload, GPU pipeline
compilation and read-back on WebGPU; it is not a benchmark.

Exit codes: 0 done, 1 the file, a tensor or the backend is missing or the inputs do not fit the
method (the message says which), 2 usage error.`;

export const options: Record<string, OptionSpec> = {
  in: { type: 'string' },
  method: { type: 'string', choices: METHODS },
  out: { type: 'string' },
  backend: { type: 'string', default: 'auto', choices: BACKEND_CHOICES },
  layout: { type: 'string', default: 'HND', choices: ['HND', 'NHD'] },
  causal: { type: 'boolean', default: false },
  'causal-alignment': { type: 'string', default: 'top-left', choices: ['top-left', 'bottom-right'] },
  'sm-scale': { type: 'string' },
  lse: { type: 'boolean', default: false },
  compare: { type: 'boolean', default: false },
  q: { type: 'string', default: 'q' },
  k: { type: 'string', default: 'k' },
  v: { type: 'string', default: 'v' },
  json: { type: 'boolean', default: false },
  frames: { type: 'string' },
  height: { type: 'string' },
  width: { type: 'string' },
  'prefix-tokens': { type: 'string' },
  density: { type: 'string' },
  'q-clusters': { type: 'string' },
  'k-clusters': { type: 'string' },
  'top-p': { type: 'string' },
  topk: { type: 'string' },
  'cdf-threshold': { type: 'string' },
  'sim-threshold': { type: 'string' },
  'pv-threshold': { type: 'string' },
  params: { type: 'string' },
};

/** A fraction in (0, 1], written as a decimal. */
function parseFraction(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  const x = Number(text);
  if (!/^[0-9.]+$/.test(text) || !(x > 0 && x <= 1)) {
    throw new UsageError(`${option} must be a number in (0, 1]; got '${text}'`);
  }
  return x;
}

/** The sparse methods' own options, from the command line (only what was given). */
function sparseOptions(values: CommandArgs['values'], method: Method): Record<string, number> {
  const out: Record<string, number> = {};
  const count = (name: string, key: string, zeroOk = false) => {
    const text = values[name] as string | undefined;
    if (text === undefined) return;
    out[key] = zeroOk && text === '0' ? 0 : parseCount(text, `--${name}`);
  };
  if (method === 'svg') {
    for (const name of ['frames', 'height', 'width']) {
      if (values[name] === undefined)
        throw new UsageError(`--method svg needs --frames, --height and --width`);
      count(name, name);
    }
    const density = parseFraction(values.density as string | undefined, '--density');
    if (density !== undefined) out.density = density;
  }
  if (method === 'svg2') {
    count('q-clusters', 'qClusters');
    count('k-clusters', 'kClusters');
    const topP = parseFraction(values['top-p'] as string | undefined, '--top-p');
    if (topP !== undefined) out.topP = topP;
  }
  if (method === 'svg' || method === 'svg2') count('prefix-tokens', 'prefixTokens', true);
  if (method === 'sparge') {
    const topk = parseFraction(values.topk as string | undefined, '--topk');
    if (topk !== undefined) out.topk = topk;
    const tau = parseFraction(values['cdf-threshold'] as string | undefined, '--cdf-threshold');
    if (tau !== undefined) out.cdfThreshold = tau;
    const theta = parseReal(values['sim-threshold'] as string | undefined, '--sim-threshold', -1, 1);
    if (theta !== undefined) out.simThreshold = theta;
    const pv = parseReal(values['pv-threshold'] as string | undefined, '--pv-threshold', 0, 50);
    if (pv !== undefined) out.pvThreshold = pv;
  }
  return out;
}

/** A number in [lo, hi], written as a decimal. */
function parseReal(text: string | undefined, option: string, lo: number, hi: number): number | undefined {
  if (text === undefined) return undefined;
  const x = Number(text);
  if (!/^-?[0-9.]+$/.test(text) || !(x >= lo && x <= hi)) {
    throw new UsageError(`${option} must be a number in [${lo}, ${hi}]; got '${text}'`);
  }
  return x;
}

/** --params: a SpargeAttn parameter file; unreadable or malformed is a failure (exit 1). */
function readSpargeParams(file: string): SpargeParams {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliFailure(`cannot read --params ${file}: ${(e as Error).message}`);
  }
  return spargeParamsFromJson(text);
}

/** The oracle comparison; `lseMaxAbsError` only when the LSE was asked for. */
export interface AttentionComparison {
  readonly cosine: number;
  readonly relL1: number;
  readonly rmse: number;
  readonly lseMaxAbsError?: number;
}

/** What `--json` prints. */
export interface AttentionReport {
  readonly sparq: string;
  readonly method: Method;
  readonly backend: 'cpu' | 'webgpu';
  /** The WebGPU adapter, in doctor's one-line form; null on the CPU. */
  readonly adapter: string | null;
  /** The dense WebGPU kernel tier; null elsewhere. */
  readonly tier: string | null;
  readonly input: {
    readonly file: string;
    readonly dtype: string;
    readonly shapes: Record<string, number[]>;
  };
  /** The dtype q, k and v had when the method ran (after conversion for the backend). */
  readonly computeDtype: string;
  readonly layout: Layout;
  readonly causal: boolean;
  readonly causalAlignment: CausalAlignment;
  readonly smScale: number;
  readonly outputShape: number[];
  readonly out: string | null;
  readonly timeMs: number;
  readonly compare: AttentionComparison | null;
}

/** The dtypes the CPU kernels take as they are (attention/options.ts ATTENTION_DTYPES). */
const CPU_DTYPES: readonly string[] = ['float64', 'float32', 'float16', 'bfloat16'];

/**
 * q, k, v in the dtype the backend runs: float16 for the WebGPU kernels; on the CPU the file's dtype
 * when all three share one the kernels take, else float32. Non-float tensors are left as they are, so
 * the library rejects them with its DTypeError.
 */
function toComputeDtype(ts: readonly Tensor[], backend: 'cpu' | 'webgpu'): Tensor[] {
  const isFloat = (t: Tensor) => CPU_DTYPES.includes(t.dtype) || isCodedFloat(t.dtype);
  const bad = ts.find((t) => !isFloat(t));
  if (bad) {
    throw new DTypeError(
      `attention inputs must be float tensors; got ${bad.dtype} ${formatShape(bad.shape)}`,
    );
  }
  const shared = ts.every((t) => t.dtype === ts[0].dtype) ? ts[0].dtype : undefined;
  const target =
    backend === 'webgpu'
      ? 'float16'
      : shared !== undefined && CPU_DTYPES.includes(shared)
        ? shared
        : 'float32';
  return ts.map((t) => (t.dtype === target ? t : tensor(t.toFloat32(), t.shape, target)));
}

/** `--sm-scale`: a finite number > 0, written as a decimal (so '', '0x1' and 'Infinity' are refused). */
function parseSmScale(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const x = Number(text);
  if (!/^[0-9.eE+-]+$/.test(text) || !Number.isFinite(x) || x <= 0) {
    throw new UsageError(`--sm-scale must be a finite number > 0; got '${text}'`);
  }
  return x;
}

/** A failure of the command itself (not of the library): its message is printed and the exit code is 1. */
class CliFailure extends Error {}

/** Reads the file and the three named tensors; a missing file or name is a failure (exit 1). */
function readInputs(file: string, names: readonly string[]): Tensor[] {
  let tensors: Record<string, Tensor>;
  try {
    tensors = readSafetensors(file).tensors;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES') {
      throw new CliFailure(`cannot read --in ${file}: ${(e as Error).message}`);
    }
    throw e;
  }
  const held = Object.entries(tensors).map(([n, t]) => `${n} ${t.dtype} ${formatShape(t.shape)}`);
  return names.map((n) => {
    const t = tensors[n];
    if (t === undefined) {
      throw new CliFailure(
        `${file} has no tensor '${n}'; it holds ${held.length === 0 ? 'no tensors' : held.join(', ')}. ` +
          `Name the tensors with --q, --k and --v.`,
      );
    }
    return t;
  });
}

/** The backend to run on: what was asked, or for 'auto' WebGPU when it exists and runs the method. */
async function chooseBackend(
  requested: string,
  method: Method,
  inputs: readonly Tensor[],
  attentionOpts: AttentionOptions,
  io: CliIo,
): Promise<{ backend: 'cpu' | 'webgpu'; runtime?: GpuRuntime }> {
  if (requested === 'cpu') return { backend: 'cpu' };
  const why =
    method === 'dense' || method === 'svg' || method === 'svg2' || method === 'sparge'
      ? undefined
      : gpuUnsupportedReason(
          resolveSageOptions(inputs[0], inputs[1], inputs[2], { ...attentionOpts, preset: method }),
        );
  if (why !== undefined) {
    const message = `--method ${method} does not run on WebGPU yet (it needs ${why})`;
    if (requested === 'webgpu') throw new UnsupportedOptionError(`${message}; use --backend cpu or auto`);
    io.stderr(`sparq attention: ${message}; using the CPU backend\n`);
    return { backend: 'cpu' };
  }
  try {
    return { backend: 'webgpu', runtime: await acquireGpu() };
  } catch (e) {
    if (requested === 'webgpu') throw e;
    io.stderr(`sparq attention: no WebGPU device (${(e as Error).message}); using the CPU backend\n`);
    return { backend: 'cpu' };
  }
}

/** Output (and LSE) of the method, on the host as float32, and the kernel tier where there is one. */
async function runMethod(
  method: Method,
  [q, k, v]: readonly Tensor[],
  opts: AttentionOptions,
  runtime: GpuRuntime | undefined,
  sparse: Record<string, unknown>,
): Promise<{ out: Tensor; lse?: Tensor; tier: string | null }> {
  if (runtime === undefined) {
    const r: AttentionResult<Tensor> =
      method === 'dense'
        ? attentionCpu(q, k, v, opts)
        : method === 'svg'
          ? svgAttention(q, k, v, {
              ...opts,
              ...(sparse as { frames: number; height: number; width: number }),
            })
          : method === 'svg2'
            ? svg2Attention(q, k, v, { ...opts, ...sparse })
            : method === 'sparge'
              ? (spargeAttention(q, k, v, {
                  ...opts,
                  ...sparse,
                } as SpargeAttentionOptions) as AttentionResult<Tensor<'float32'>>)
              : sageAttention(q, k, v, { ...opts, preset: method });
    return 'out' in r ? { out: r.out, lse: r.lse, tier: null } : { out: r, tier: null };
  }
  const [gq, gk, gv] = [q, k, v].map((t, i) => upload(runtime, t, 'qkv'[i]));
  try {
    let tier: string | null = null;
    let r: AttentionResult<GpuTensor<'float32'>>;
    if (method === 'dense') {
      // attentionGpu is exactly runPlanOnce(planAttentionGpu(...)); the plan also names its tier
      const plan = planAttentionGpu(gq, gk, gv, opts);
      tier = plan.tier;
      r = runPlanOnce(plan);
    } else if (method === 'svg') {
      r = svgAttention(gq, gk, gv, {
        ...opts,
        ...(sparse as { frames: number; height: number; width: number }),
      });
    } else if (method === 'svg2') {
      r = await svg2Attention(gq, gk, gv, { ...opts, ...sparse });
    } else if (method === 'sparge') {
      r = await spargeAttention(gq, gk, gv, { ...opts, ...sparse } as SpargeAttentionOptions);
    } else {
      r = sageAttention(gq, gk, gv, { ...opts, preset: method });
    }
    const [out, lse] = 'out' in r ? [r.out, r.lse] : [r, undefined];
    try {
      return { out: await download(out), lse: lse && (await download(lse)), tier };
    } finally {
      out.destroy();
      lse?.destroy();
    }
  } finally {
    for (const g of [gq, gk, gv]) g.destroy();
  }
}

/** Largest |lse − reference| over rows, where two equal infinities (rows that see no key) count as 0. */
function lseMaxAbsError(lse: Tensor, reference: Tensor): number {
  const a = lse.toFloat64();
  const b = reference.toFloat64();
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] === b[i] ? 0 : Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return NaN;
    worst = Math.max(worst, d);
  }
  return worst;
}

/** The human-readable summary on stdout. */
export function formatReport(r: AttentionReport): string {
  const where = r.backend === 'webgpu' ? `webgpu (${r.adapter}${r.tier ? `, tier ${r.tier}` : ''})` : 'cpu';
  const lines = [
    `${r.method} on ${where}: o ${formatShape(r.outputShape)} float32 from ${r.computeDtype} inputs ` +
      `in ${r.timeMs.toFixed(1)} ms`,
  ];
  if (r.out !== null) lines.push(`wrote ${r.out}`);
  if (r.compare !== null) {
    const c = r.compare;
    lines.push(
      `vs float64 oracle: cosine ${c.cosine.toFixed(6)}, relL1 ${c.relL1.toPrecision(3)}, RMSE ${c.rmse.toPrecision(3)}` +
        (c.lseMaxAbsError === undefined ? '' : `, max |LSE error| ${c.lseMaxAbsError.toPrecision(3)}`),
    );
  }
  return lines.join('\n') + '\n';
}

/** Reads, runs, writes and compares; see `usage`. */
export async function run(args: CommandArgs, io: CliIo): Promise<number> {
  const values = args.values;
  const file = values.in as string | undefined;
  const method = values.method as Method | undefined;
  if (file === undefined) throw new UsageError('--in <file> is required');
  if (method === undefined) throw new UsageError(`--method is required (one of ${METHODS.join(', ')})`);
  const smScale = parseSmScale(values['sm-scale'] as string | undefined);
  const attentionOpts: AttentionOptions = {
    layout: values.layout as Layout,
    causal: values.causal === true,
    causalAlignment: values['causal-alignment'] as CausalAlignment,
    returnLse: values.lse === true,
    ...(smScale === undefined ? {} : { smScale }),
  };
  const names = [values.q, values.k, values.v] as string[];
  const sparse: Record<string, unknown> = sparseOptions(values, method);
  let runtime: GpuRuntime | undefined;
  try {
    const raw = readInputs(file, names);
    if (method === 'sparge' && values.params !== undefined) {
      sparse.params = readSpargeParams(values.params as string);
    }
    // validated on the host first, so a shape error comes before any GPU work
    const hostInputs = toComputeDtype(raw, 'cpu');
    const problem = resolveAttentionProblem(hostInputs[0], hostInputs[1], hostInputs[2], attentionOpts);
    const chosen = await chooseBackend(values.backend as string, method, hostInputs, attentionOpts, io);
    runtime = chosen.runtime;
    const inputs = chosen.backend === 'webgpu' ? toComputeDtype(hostInputs, 'webgpu') : hostInputs;
    const started = performance.now();
    const result = await runMethod(method, inputs, attentionOpts, runtime, sparse);
    const timeMs = performance.now() - started;

    let compare: AttentionComparison | null = null;
    if (values.compare === true) {
      io.stderr('sparq attention: computing the float64 oracle\n');
      const ref = attentionReference(inputs[0], inputs[1], inputs[2], { ...attentionOpts, returnLse: true });
      compare = {
        cosine: metrics.cosine(result.out, ref.out),
        relL1: metrics.relL1(result.out, ref.out),
        rmse: metrics.rmse(result.out, ref.out),
        ...(result.lse ? { lseMaxAbsError: lseMaxAbsError(result.lse, ref.lse) } : {}),
      };
    }

    const adapter = runtime ? describeAdapter(runtime.caps) : null;
    const out = values.out as string | undefined;
    if (out !== undefined) {
      const metadata: Record<string, string> = {
        method,
        backend: chosen.backend,
        sparq: sparqVersion(),
        layout: attentionOpts.layout as string,
        computeDtype: inputs[0].dtype,
      };
      if (adapter !== null) metadata.adapter = adapter;
      if (result.tier !== null) metadata.tier = result.tier;
      writeSafetensorsFile(out, result.lse ? { o: result.out, lse: result.lse } : { o: result.out }, {
        metadata,
      });
    }

    const report: AttentionReport = {
      sparq: sparqVersion(),
      method,
      backend: chosen.backend,
      adapter,
      tier: result.tier,
      input: {
        file,
        dtype: [...new Set(raw.map((t) => t.dtype))].join(','),
        shapes: Object.fromEntries(names.map((n, i) => [n, [...raw[i].shape]])),
      },
      computeDtype: inputs[0].dtype,
      layout: attentionOpts.layout as Layout,
      causal: attentionOpts.causal === true,
      causalAlignment: attentionOpts.causalAlignment as CausalAlignment,
      smScale: problem.smScale,
      outputShape: [...result.out.shape],
      out: out ?? null,
      timeMs,
      compare,
    };
    io.stdout(values.json === true ? resultsJson(report) : formatReport(report));
    return EXIT.ok;
  } catch (e) {
    if (!(e instanceof CliFailure)) throw e;
    io.stderr(`sparq attention: ${e.message}\n`);
    return EXIT.failure;
  } finally {
    runtime?.release();
  }
}
