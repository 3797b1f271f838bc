/**
 * A compile check for subgroup-matrix kernels on adapters without subgroup matrices (lavapipe in CI):
 * every matrix type becomes one small struct and every matrix builtin a plain function that touches
 * the same array, so Tint can parse, type-check and run its uniformity analysis on everything else in
 * the kernel — names, scopes, loops, barriers, the staging and softmax arithmetic. It says nothing about
 * the matrix semantics (those run on a GPU that has them, and the matrix kinds are not checked); it
 * catches the typos and scoping mistakes a generator can make in code that CI could otherwise never
 * compile.
 */

/** WGSL source with the subgroup-matrix extension replaced by stand-ins. */
export function withSubgroupMatrixStandIns(code: string): string {
  const fns = new Map<string, string>();
  let src = code
    .replace('enable chromium_experimental_subgroup_matrix;', '')
    .replace('diagnostic(off, chromium_experimental.subgroup_matrix_uniformity);', '');
  src = src.replace(
    /subgroupMatrixLoad<subgroup_matrix_\w+<[^>]+>, (?:row|col)_major>\(&(\w+), /g,
    (_m, arr: string) => {
      const fn = `smLoad_${arr}`;
      fns.set(fn, `fn ${fn}(off: u32, stride: u32) -> SM { let x = ${arr}[off + stride]; return SM(); }`);
      return `${fn}(`;
    },
  );
  src = src.replace(/subgroupMatrixStore<(?:row|col)_major>\(&(\w+), /g, (_m, arr: string) => {
    const fn = `smStore_${arr}`;
    fns.set(fn, `fn ${fn}(off: u32, value: SM, stride: u32) { let x = ${arr}[off + stride]; }`);
    return `${fn}(`;
  });
  src = src.replace(/subgroup_matrix_\w+<[^>]+>/g, 'SM');
  src = src.replace(/subgroupMatrixMultiplyAccumulate\(/g, 'smMma(');
  fns.set('smMma', 'fn smMma(a: SM, b: SM, c: SM) -> SM { return c; }');
  return `${src}\nstruct SM { v: f32 }\n${[...fns.values()].join('\n')}\n`;
}

/** Compilation errors of a WGSL module on this device ([] when it compiles). */
export async function compileErrors(device: GPUDevice, code: string): Promise<string[]> {
  const module = device.createShaderModule({ code });
  const info = await module.getCompilationInfo();
  return info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}:${m.linePos} ${m.message}`);
}
