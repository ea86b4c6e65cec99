#!/usr/bin/env bash
# Runs kvant's GPU tests and GPU benchmarks on a GPU host, from the pack that tools/gpu/pack.sh
# made (.device/ in the checkout): one command, no Java or Maven needed there.
#
#   tools/gpu/run.sh [tests|bench|all]     (default all; results also under $OUT when set)
set -uo pipefail
# The checkout's root (KVANT_ROOT overrides it when this script is run from inside the pack).
ROOT="${KVANT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
PACK="$ROOT/.device"
WHAT="${1:-all}"
RESULTS="${OUT:-$ROOT/.device/results}"
mkdir -p "$RESULTS"

JDK=/tmp/kvant-jdk
if [[ ! -x "$JDK/bin/java" ]]; then
  mkdir -p "$JDK" && tar -xJf "$PACK/jdk.tar.xz" -C "$JDK" --strip-components=1
fi
JAVA=("$JDK/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED)
# SharedModels looks for shared/models above the working directory.
if [[ ! -d "$ROOT/shared/models" ]]; then
  mkdir -p "$ROOT/shared" && cp -r "$PACK/models" "$ROOT/shared/models"
fi
CP=$(ls "$PACK"/lib/*.jar | grep -v console-standalone | tr '\n' ':')
cd "$ROOT"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv | tee "$RESULTS/gpu.txt"

rc=0
if [[ "$WHAT" == tests || "$WHAT" == all ]]; then
  # Every engine-cuda test (the GPU ones run here; the others too, as a check of the pack).
  "${JAVA[@]}" -jar "$PACK"/lib/junit-platform-console-standalone-*.jar execute \
    --class-path "$CP" --scan-class-path "$(ls "$PACK"/lib/kvant-engine-cuda*tests.jar | head -1)" \
    --details=summary --details-theme=ascii --disable-banner \
    --config=junit.jupiter.execution.timeout.default=600s 2>&1 | tee "$RESULTS/tests.txt"
  rc=${PIPESTATUS[0]}
  grep -h "^GPU-vs-CPU\|^delta version" "$RESULTS/tests.txt" > "$RESULTS/comparisons.txt" || true
fi
if [[ "$WHAT" == bench || "$WHAT" == all ]]; then
  BENCH=("${JAVA[@]}" -Xmx8g -cp "$CP" io.kvant.cuda.bench.CudaBench)
  # The product kernels alone on 8B-shaped matrices (how the forward pass picks among them).
  "${BENCH[@]}" gemv 2>&1 | tee "$RESULTS/gemv.txt"
  # BF16 with and without CUDA graphs (one run each, so the columns compare as ratios), then
  # the quantized weight formats with graphs.
  "${BENCH[@]}" decode --shape llama-3-8b --batch 1,16,64,256 --graphs both 2>&1 | tee "$RESULTS/decode-8b.txt"
  for w in int8 fp8-e4m3 int4-g128; do
    "${BENCH[@]}" decode --shape llama-3-8b --batch 1,16,64,256 --weights "$w" 2>&1 | tee "$RESULTS/decode-8b-$w.txt"
  done
  "${BENCH[@]}" decode --shape llama-3.2-1b --batch 1,16,64,256 --graphs both 2>&1 | tee "$RESULTS/decode-1b.txt"
fi
exit $rc
