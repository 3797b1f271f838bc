/**
 * The WebGPU side of the test suite. Tests that need a GPU ask `testGpu()`: it acquires one shared
 * runtime per test file, or says why it cannot. With SPARQ_REQUIRE_WEBGPU=1 (what CI sets) a missing
 * adapter fails the suite instead of skipping, so a broken driver install cannot turn CI green.
 */
import { after } from 'node:test';
import { acquireGpu, type GpuRuntime } from '../../src/gpu/runtime.js';
import { describeAdapter } from '../../src/gpu/capabilities.js';

export const REQUIRE_WEBGPU = process.env.SPARQ_REQUIRE_WEBGPU === '1';

let runtime: Promise<GpuRuntime | string> | undefined;

/** The shared runtime, or the reason it is unavailable (then tests pass `{ skip: reason }`). */
export function testGpu(): Promise<GpuRuntime | string> {
  runtime ??= acquireGpu().then(
    (r) => {
      after(() => r.release());
      return r;
    },
    (e: Error) => {
      if (REQUIRE_WEBGPU) throw new Error(`SPARQ_REQUIRE_WEBGPU=1 but no WebGPU device: ${e.message}`);
      const reason = `WebGPU tests skipped: no adapter (${e.message.split('.')[0]})`;
      console.log(`# ${reason}`);
      return reason;
    },
  );
  return runtime;
}

export function adapterLabel(r: GpuRuntime): string {
  return describeAdapter(r.caps);
}
