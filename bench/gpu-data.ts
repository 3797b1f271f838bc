/**
 * Random benchmark inputs generated on the GPU (no host upload of gigabytes): float16 values of unit
 * variance, or int8 codes in [−127, 127], from an integer hash of the element index and a seed. Bench
 * data only; the library's RNG is core/rng.ts.
 */
import { recordDispatch, uniformBuffer } from '../src/gpu/dispatch.js';
import { emptyGpu, type GpuTensor } from '../src/gpu/gpu-tensor.js';
import type { GpuRuntime } from '../src/gpu/runtime.js';

const FILL = /* wgsl */ `
@group(0) @binding(0) var<uniform> seed: vec4<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
fn hash(x: u32) -> u32 {
  var h = x * 0x9e3779b9u + seed.x;
  h ^= h >> 16u; h *= 0x7feb352du; h ^= h >> 15u; h *= 0x846ca68bu; h ^= h >> 16u;
  return h;
}
// uniform on [-√3, √3): variance 1
fn u(x: u32) -> f32 { return (f32(hash(x) >> 8u) / 16777216.0 * 2.0 - 1.0) * 1.7320508; }
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
  let i = gid.x + gid.y * n.x * 256u;
  if (i >= arrayLength(&dst)) { return; }
  if (seed.y == 1u) {
    dst[i] = pack2x16float(vec2<f32>(u(2u * i), u(2u * i + 1u)));
  } else {
    // four random bytes with any -128 (0x80: top bit set, low seven clear) turned into -127 (0x81)
    let h = hash(i);
    let lowClear = ~((h & 0x7f7f7f7fu) + 0x7f7f7f7fu) & 0x80808080u;
    dst[i] = h | ((h & lowClear) >> 7u);
  }
}`;

/** A new GPU tensor of random data: 'float16' unit-variance values or 'int8' codes. */
export function randomGpu<D extends 'float16' | 'int8'>(
  rt: GpuRuntime,
  shape: number[],
  dtype: D,
  seed: number,
): GpuTensor<D> {
  const t = emptyGpu(rt, shape, dtype, 'bench input');
  const params = uniformBuffer(rt, new Uint32Array([seed, dtype === 'float16' ? 1 : 0, 0, 0]).buffer, 'seed');
  const enc = rt.device.createCommandEncoder();
  const pass = enc.beginComputePass();
  recordDispatch(rt, pass, FILL, [params, t.buffer], Math.ceil(t.buffer.size / 4 / 256));
  pass.end();
  rt.device.queue.submit([enc.finish()]);
  params.destroy();
  return t;
}
