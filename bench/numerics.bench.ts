/**
 * Number-format throughput on the CPU backend: encode (float32 → codes) for every format with
 * round-to-nearest-even, stochastic rounding for float4_e2m1fn (the MXFP4 element format TetraJet
 * quantizes gradients to), and decode (codes → float32), on one thread. Figures are values per
 * second: the element count over the median wall time of the repetitions, after one warm-up run.
 * Inputs are standard-normal float32 values (their absolute values for the unsigned
 * float8_e8m0fnu), so nearly every element takes the ordinary rounding path.
 */
import { cpus } from 'node:os';
import { Rng } from '../src/core/rng.js';
import {
  FLOAT_FORMATS,
  decode,
  encode,
  type EncodeOptions,
  type FloatFormatName,
} from '../src/numerics/index.js';
import { median, type BenchContext, type BenchModule, type BenchRow } from './harness.js';

const FULL_SIZE = 4 * 2 ** 20;
const QUICK_SIZE = 2 ** 18;
const STOCHASTIC_FORMAT: FloatFormatName = 'float4_e2m1fn';

function timeIt(run: () => void, reps: number): number {
  run();
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    run();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

const numericsBench: BenchModule = {
  area: 'numerics',
  async run(ctx: BenchContext): Promise<BenchRow[]> {
    const n = ctx.quick ? QUICK_SIZE : FULL_SIZE;
    const reps = ctx.quick ? 1 : 7;
    const size = ctx.quick ? '256K' : '4M';
    const device = cpus()[0]?.model.trim() ?? 'unknown CPU';
    const normal = new Float32Array(n);
    Rng.fromSeed(0).fillNormal(normal);
    const positive = normal.map(Math.abs);
    const decoded = new Float32Array(n);
    const rows: BenchRow[] = [];
    const wanted = (name: string) => ctx.filter.length === 0 || ctx.filter.some((f) => name.includes(f));
    const row = (name: string, seconds: number, notes: string): BenchRow => ({
      area: 'numerics',
      name,
      value: n / seconds,
      unit: 'values/s',
      backend: 'cpu',
      tier: 'js',
      device,
      notes: `single thread, median of ${reps} after 1 warm-up; ${notes}`,
    });

    for (const format of Object.keys(FLOAT_FORMATS) as FloatFormatName[]) {
      const input = FLOAT_FORMATS[format].signed ? normal : positive;
      const inputNote = FLOAT_FORMATS[format].signed ? 'N(0,1) inputs' : '|N(0,1)| inputs';
      const codes = encode(format, input);
      const modes: [string, EncodeOptions][] = [['nearest-even', {}]];
      if (format === STOCHASTIC_FORMAT) modes.push(['stochastic', { rounding: 'stochastic', seed: 1 }]);
      for (const [mode, opts] of modes) {
        const name = `encode ${format} ${mode} ${size} values`;
        if (!wanted(name)) continue;
        const seconds = timeIt(() => encode(format, input, { ...opts, out: codes }), reps);
        rows.push(row(name, seconds, `${inputNote}, preallocated out`));
      }
      const name = `decode ${format} ${size} values`;
      if (wanted(name)) {
        const seconds = timeIt(() => decode(format, codes, decoded), reps);
        rows.push(row(name, seconds, 'codes of the encode inputs, preallocated out'));
      }
    }
    return rows;
  },
};

export default numericsBench;
