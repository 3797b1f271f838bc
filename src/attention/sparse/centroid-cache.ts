/**
 * SVG2's per-layer centroid cache (sparse_attention.md §3.2 step 1, "Centroid cache"): the first call on
 * a layer runs `kmeans_iter_init` iterations from a random sample and stores the Q and K centroids;
 * every later call on that layer starts from the stored centroids, runs `kmeans_iter_step` iterations
 * and overwrites them. Consecutive denoising steps change Q and K only a little, so two iterations from
 * the last step's centroids reach what fifty from scratch do (paper: k-means 76× faster).
 *
 * Like the reference the key is the layer alone: CFG branches that call the same layer share (and
 * alternately update) one entry. An entry whose shape no longer fits (other heads, head dim or cluster
 * counts) is ignored and replaced by a cold start, where the reference would fail.
 *
 * Host calls store float64 centroids; GPU calls (svg2-gpu.ts) store GPU tensors, so a warm step reads
 * nothing back. The cache owns GPU entries: replacing, deleting or clearing one frees its buffers. A
 * GPU call accepts a host entry (it uploads it); a host call refuses a GPU entry (use one cache per
 * backend).
 */
import { type GpuTensor, isGpuTensor } from '../../gpu/gpu-tensor.js';

export type LayerKey = number | string;

export interface CentroidEntry {
  /** sets = B·H. */
  readonly sets: number;
  readonly d: number;
  readonly qClusters: number;
  readonly kClusters: number;
  /** sets·C_q·D and sets·C_k·D values (host), or [sets, C, D] float32 GPU tensors. */
  readonly q: Float64Array | GpuTensor<'float32'>;
  readonly k: Float64Array | GpuTensor<'float32'>;
}

function freeGpu(e: CentroidEntry | undefined, keep?: CentroidEntry): void {
  if (!e) return;
  for (const t of [e.q, e.k]) {
    if (isGpuTensor(t) && t !== keep?.q && t !== keep?.k) t.destroy();
  }
}

export class CentroidCache {
  private readonly entries = new Map<LayerKey, CentroidEntry>();

  /** The entry of `layer` if it fits these shapes, else undefined. */
  get(layer: LayerKey, shape: Omit<CentroidEntry, 'q' | 'k'>): CentroidEntry | undefined {
    const e = this.entries.get(layer);
    if (!e) return undefined;
    const fits =
      e.sets === shape.sets &&
      e.d === shape.d &&
      e.qClusters === shape.qClusters &&
      e.kClusters === shape.kClusters;
    return fits ? e : undefined;
  }

  set(layer: LayerKey, entry: CentroidEntry): void {
    freeGpu(this.entries.get(layer), entry);
    this.entries.set(layer, entry);
  }

  has(layer: LayerKey): boolean {
    return this.entries.has(layer);
  }

  delete(layer: LayerKey): boolean {
    freeGpu(this.entries.get(layer));
    return this.entries.delete(layer);
  }

  clear(): void {
    for (const e of this.entries.values()) freeGpu(e);
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
