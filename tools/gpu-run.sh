#!/usr/bin/env bash
# One device call on a Linux NVIDIA host without Node (the lent H100/H200): unpack the bundle built by
# ../shared/tools/gpu-bundle.sh, then run the GPU tests (every tier, tensor cores included), the WGSL
# validation, the GPU benchmarks and the PyTorch SDPA peer, writing everything under $OUT.
# Usage (device tool, carry [".gpu-bundle"]): bash tools/gpu-run.sh [tests] [bench:<area>[:filter]] ... [sdpa]
set -uo pipefail
source .gpu-bundle/unpack.sh >/dev/null
out=${OUT:-/tmp/out}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 
for step in "$@"; do
  start=$(date +%s)
  case "$step" in
    tests)
      SPARQ_REQUIRE_WEBGPU=1 timeout 200 node tools/run-tests.mjs test/attention test/gpu test/cli/attention \
        >"$out/tests.log" 2>&1
      grep -E '^# (tests|pass|fail|skipped)' "$out/tests.log"
      grep -E '^not ok' "$out/tests.log" | head -20 ;;
    wgsl)
      timeout 120 node --import tsx tools/validate-wgsl.ts >"$out/wgsl.log" 2>&1; tail -3 "$out/wgsl.log" ;;
    bench:*)
      IFS=: read -r _ area filter <<<"$step"
      timeout ${BENCH_TIMEOUT:-330} node --import tsx bench/run.ts "$area" ${filter:+--filter "$filter"} \
        --out "$out/bench-$area.json" >"$out/bench-$area.md" 2>&1
      grep -E "^\|" "$out/bench-$area.md" | cut -c1-160; tail -3 "$out/bench-$area.md" ;;
    sdpa)
      timeout 120 python3 tools/sdpa-peer.py >"$out/sdpa.json" 2>&1; tail -c 600 "$out/sdpa.json" ;;
  esac
  echo "# $step: $(( $(date +%s) - start )) s"
done
