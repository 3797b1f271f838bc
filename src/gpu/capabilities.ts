/**
 * What a WebGPU adapter offers, read once into a frozen record. Kernel selection (`canUse…` gates in
 * the operations) reads only this record, so a choice is reproducible from it.
 */

/** One subgroup-matrix shape the adapter reports (Dawn's `GPUSubgroupMatrixConfig`). */
export interface SubgroupMatrixConfig {
  readonly componentType: string;
  readonly resultComponentType: string;
  readonly M: number;
  readonly N: number;
  readonly K: number;
}

/** Kernel tiers, best first (ARCHITECTURE.md "Backends and kernel tiers"). */
export type GpuTier = 'subgroup-matrix' | 'f16' | 'f32';

export interface GpuCapabilities {
  readonly adapter: {
    readonly vendor: string;
    readonly architecture: string;
    readonly device: string;
    readonly description: string;
    readonly isFallbackAdapter: boolean;
  };
  /** Features enabled on the device (not merely offered by the adapter). */
  readonly features: readonly string[];
  readonly limits: Readonly<Record<string, number>>;
  readonly subgroupMinSize: number;
  readonly subgroupMaxSize: number;
  readonly subgroupMatrixConfigs: readonly SubgroupMatrixConfig[];
  readonly wgslLanguageFeatures: readonly string[];
  /** The tiers this device can run, best first; 'f32' is always there. */
  readonly tiers: readonly GpuTier[];
  /** Whether GPU timestamps are available for timing. */
  readonly timestamps: boolean;
}

/** Limits copied into the record (the ones kernels and buffer sizing depend on). */
const LIMIT_NAMES = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
  'minStorageBufferOffsetAlignment',
] as const;

export const SUBGROUP_MATRIX_FEATURE = 'chromium-experimental-subgroup-matrix';

/** Whether the device offers an f16 × f16 subgroup matrix product with the given result type and shape. */
export function hasSubgroupMatrix(
  caps: GpuCapabilities,
  component: string,
  result: string,
  m: number,
  n: number,
  k: number,
): boolean {
  return caps.subgroupMatrixConfigs.some(
    (c) =>
      c.componentType === component &&
      c.resultComponentType === result &&
      c.M === m &&
      c.N === n &&
      c.K === k,
  );
}

interface AdapterInfoLike {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
  subgroupMatrixConfigs?: readonly SubgroupMatrixConfig[];
}

export function readCapabilities(
  adapter: GPUAdapter,
  device: GPUDevice,
  languageFeatures: Iterable<string> | undefined,
): GpuCapabilities {
  const info = (adapter.info ?? {}) as AdapterInfoLike;
  const features = [...device.features].map(String).sort();
  const limits: Record<string, number> = {};
  for (const name of LIMIT_NAMES)
    limits[name] = Number((device.limits as unknown as Record<string, number>)[name]);
  const configs = features.includes(SUBGROUP_MATRIX_FEATURE)
    ? (info.subgroupMatrixConfigs ?? []).map((c) =>
        Object.freeze({
          componentType: String(c.componentType),
          resultComponentType: String(c.resultComponentType),
          M: c.M,
          N: c.N,
          K: c.K,
        }),
      )
    : [];
  const tiers: GpuTier[] = [];
  const f16 = features.includes('shader-f16');
  const caps = {
    adapter: Object.freeze({
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      device: info.device ?? '',
      description: info.description ?? '',
      isFallbackAdapter: Boolean(
        info.isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter,
      ),
    }),
    features: Object.freeze(features),
    limits: Object.freeze(limits),
    subgroupMinSize: info.subgroupMinSize ?? 0,
    subgroupMaxSize: info.subgroupMaxSize ?? 0,
    subgroupMatrixConfigs: Object.freeze(configs),
    wgslLanguageFeatures: Object.freeze([...(languageFeatures ?? [])].map(String).sort()),
    tiers,
    timestamps: features.includes('timestamp-query'),
  };
  if (
    f16 &&
    hasSubgroupMatrix(caps as GpuCapabilities, 'f16', 'f32', 16, 16, 16) &&
    features.includes('subgroups')
  ) {
    tiers.push('subgroup-matrix');
  }
  if (f16) tiers.push('f16');
  tiers.push('f32');
  Object.freeze(tiers);
  return Object.freeze(caps);
}

/** A one-line description of a device for results and logs. */
export function describeAdapter(caps: GpuCapabilities): string {
  const a = caps.adapter;
  const name = a.description || a.device || a.vendor || 'unknown adapter';
  return a.isFallbackAdapter ? `${name} (software fallback)` : name;
}
