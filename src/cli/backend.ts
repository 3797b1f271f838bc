/**
 * The `--backend cpu|webgpu|auto` choice of the commands that run experiments. `auto` takes WebGPU only
 * for a hardware adapter: a software fallback (lavapipe on CI) is slower than the CPU backend for the
 * small shapes experiments use, so it is never picked implicitly. `webgpu` insists (and fails without
 * an adapter); `cpu` never touches the GPU.
 */
import { SparqError } from '../core/errors.js';
import { describeAdapter } from '../gpu/capabilities.js';
import { acquireGpu } from '../gpu/runtime.js';

export const BACKEND_CHOICES = ['auto', 'cpu', 'webgpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export interface BackendSelection {
  readonly backend: 'cpu' | 'webgpu';
  /** The adapter found (whether or not it was selected); null without one or for `cpu`. */
  readonly adapter: string | null;
  /** Why this backend, in a sentence for stderr. */
  readonly reason: string;
}

export async function selectBackend(choice: BackendChoice): Promise<BackendSelection> {
  if (choice === 'cpu') return { backend: 'cpu', adapter: null, reason: '--backend cpu' };
  let runtime;
  try {
    runtime = await acquireGpu();
  } catch (e) {
    if (choice === 'webgpu') throw e;
    const why = e instanceof SparqError ? e.message : String(e);
    return {
      backend: 'cpu',
      adapter: null,
      reason: `no WebGPU adapter (${why.split('\n')[0]}); using the CPU`,
    };
  }
  try {
    const adapter = describeAdapter(runtime.caps);
    if (choice === 'webgpu') return { backend: 'webgpu', adapter, reason: '--backend webgpu' };
    return runtime.caps.adapter.isFallbackAdapter
      ? {
          backend: 'cpu',
          adapter,
          reason: `the WebGPU adapter is a software fallback (${adapter}); using the CPU`,
        }
      : { backend: 'webgpu', adapter, reason: `WebGPU adapter ${adapter}` };
  } finally {
    runtime.release();
  }
}
