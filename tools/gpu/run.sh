#!/usr/bin/env bash
# Runs kvant's GPU tests, GPU benchmarks and the server on the GPU from the pack that
# tools/gpu/pack.sh made (.device/ in the checkout): one command, no Java or Maven needed there.
#
#   tools/gpu/run.sh [all|tests|kernels|mgemv|f4|mq4|mq4check|mq8|mq8decode|mq8quick|select|kvcenter|kvcenterquick|kvcentereval|mq32|mq8k16|tests1|tests2|hotswap|gemv|peers|decode|fused|pdl|attn|check|ab|benchdevice|kv|kvenc|eval|serve|servecpu|serve8b|serve8bfp8|profile|attnsrc|rows|headline|splitsab|step1|ncu1|tall|staged|sampled|samplecheck|wide|chain|units|heads]...
#   (default all; several may be given)
# Results go to $OUT when set (the device tool's output folder), else .device/results.
set -uo pipefail
# The checkout's root: KVANT_ROOT when set; else the pack's parent when this script runs from
# inside the pack (.device/run.sh, as the device tool carries it: two levels up there is not the
# checkout, and session 30 lost a call to a run that found no JDK or jars); else two levels up
# from tools/gpu.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -n "${KVANT_ROOT:-}" ]]; then
  ROOT="$KVANT_ROOT"
elif [[ "$(basename "$HERE")" == .device ]]; then
  ROOT="$(dirname "$HERE")"
else
  ROOT="$(cd "$HERE/../.." && pwd)"
fi
PACK="$ROOT/.device"
WHAT=("${@:-all}")
RESULTS="${OUT:-$ROOT/.device/results}"
mkdir -p "$RESULTS"
wants() { local w; for w in "${WHAT[@]}"; do [[ "$w" == "$1" || "$w" == all ]] && return 0; done; return 1; }
# sections that "all" leaves out: ab needs .device/base/, profile and check repeat other sections,
# serve8b writes 25 GB of models, kvenc is issue 15's KV-encoding measurement
named() { local w; for w in "${WHAT[@]}"; do [[ "$w" == "$1" ]] && return 0; done; return 1; }

JDK=/tmp/kvant-jdk
if [[ ! -x "$JDK/bin/java" ]]; then
  mkdir -p "$JDK" && tar -xJf "$PACK/jdk.tar.xz" -C "$JDK" --strip-components=1
fi
DEPS=/tmp/kvant-deps
if [[ ! -d "$DEPS/deps" ]]; then
  mkdir -p "$DEPS" && tar -xJf "$PACK/deps.tar.xz" -C "$DEPS"
fi
JAVA=("$JDK/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED)
# SharedModels looks for shared/models above the working directory.
if [[ ! -d "$ROOT/shared/models" ]]; then
  mkdir -p "$ROOT/shared" && cp -r "$PACK/models" "$ROOT/shared/models"
fi
CP=$( (ls "$PACK"/lib/*.jar | grep -v console-standalone; ls "$DEPS"/deps/*.jar) | tr '\n' ':')
CONSOLE=$(ls "$PACK"/lib/junit-platform-console-standalone-*.jar | head -1)
cd "$ROOT"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv | tee "$RESULTS/gpu.txt"
# Clocks, power and throttle reasons every half second for the whole run (a slow run on a
# throttled card shows there, not in the code).
nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,power.limit,temperature.gpu,clocks_event_reasons.active \
  --format=csv -lms 500 > "$RESULTS/smi.csv" 2>&1 &
SMI=$!
trap 'kill $SMI 2>/dev/null' EXIT
KVANT=("${JAVA[@]}" -Xmx16g -cp "$CP" io.kvant.server.cli.Main)
BENCH=("${JAVA[@]}" -Xmx16g -cp "$CP" io.kvant.perf.BenchMain)
CUDABENCH=("${JAVA[@]}" -Xmx8g -cp "$CP" io.kvant.cuda.bench.CudaBench)

rc=0
junit() {  # junit NAME SELECTOR...
  local name=$1; shift
  timeout "${JUNIT_TIMEOUT:-420}" "${JAVA[@]}" -jar "$CONSOLE" execute --class-path "$CP" "$@" \
    --details="${JUNIT_DETAILS:-summary}" --details-theme=ascii --disable-banner \
    --config=junit.jupiter.execution.timeout.default=600s 2>&1 | tee "$RESULTS/$name.txt"
  local r=${PIPESTATUS[0]}
  [[ $r -ne 0 ]] && rc=$r
}

if named tests1 || named tests2; then
  # The whole engine-cuda suite in two calls (it outgrew one 10-minute call in session 11): every
  # class but CudaModelGpuTest, then CudaModelGpuTest (the GPU-vs-CPU comparisons on real models).
  # TESTS_TIMEOUT (default 570 s) shortens them for a call that runs other sections after.
  TESTS_JAR="$(ls "$PACK"/lib/kvant-engine-cuda*tests.jar | head -1)"
  if named tests1; then
    JUNIT_TIMEOUT=${TESTS_TIMEOUT:-570} JUNIT_DETAILS=testfeed junit tests1 --scan-class-path "$TESTS_JAR" \
      --exclude-classname '.*CudaModelGpuTest'
  fi
  if named tests2; then
    JUNIT_TIMEOUT=${TESTS_TIMEOUT:-570} JUNIT_DETAILS=testfeed junit tests2 --select-class io.kvant.cuda.model.CudaModelGpuTest
    grep -h "^GPU-vs-CPU\|^delta version" "$RESULTS/tests2.txt" > "$RESULTS/comparisons.txt" || true
  fi
fi
if wants tests; then
  # Every engine-cuda test (the GPU ones run here; the others too, as a check of the pack), then
  # the hot swap under load with the server on the GPU.
  # (more than 470 s on an H200 since session 11: use tests1 and tests2, one call each)
  JUNIT_TIMEOUT=570 junit tests --scan-class-path "$(ls "$PACK"/lib/kvant-engine-cuda*tests.jar | head -1)"
  grep -h "^GPU-vs-CPU\|^delta version" "$RESULTS/tests.txt" > "$RESULTS/comparisons.txt" || true
fi
if wants kernels; then
  # The kernel tests and the fused decode against the CPU engine (a quick check of kernel work).
  junit kernels --select-class io.kvant.cuda.model.QuantizedKernelsGpuTest \
    --select-class io.kvant.cuda.device.CudaKernelsGpuTest \
    --select-method 'io.kvant.cuda.model.CudaModelGpuTest#fusedDecodeStepsAgreeWithTheCpuEngine(java.lang.String)' \
    --select-method 'io.kvant.cuda.model.CudaModelGpuTest#overlappedLaunchGivesTheSameLogitsBitForBit()' \
    --select-method 'io.kvant.cuda.model.CudaModelGpuTest#aBatchGivesTheLogitsEachSequenceGivesAlone()' \
    --select-method 'io.kvant.cuda.model.CudaModelGpuTest#f32WeightsGiveTheCpuLogitsWithin1e3(java.lang.String)'
  grep -h "^GPU-vs-CPU" "$RESULTS/kernels.txt" > "$RESULTS/comparisons.txt" || true
fi
if named mgemv; then
  # The decode products: kernel tests of every mgemv split (plain and fused) against the float64
  # reference, the products alone, then whole decode steps under each split policy and a
  # launch-by-launch profile of a batch-1 step.
  junit mgemv --select-method 'io.kvant.cuda.model.QuantizedKernelsGpuTest#mgemvMatchesTheReferenceForEveryKindAndVariant(int)' \
    --select-method 'io.kvant.cuda.model.QuantizedKernelsGpuTest#fusedMgemvMatchesTheReference(int)' \
    --select-method 'io.kvant.cuda.model.QuantizedKernelsGpuTest#mgemvMatchesTheReferenceForDenseWeights(int)'
  timeout 300 "${CUDABENCH[@]}" gemv 2>&1 | tee "$RESULTS/gemv.txt"
  for w in bf16 int4-g128 fp8-e4m3; do
    timeout 150 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,4 --steps 64 --splits fixed,by-shape,split-k --weights "$w" 2>&1 | tee "$RESULTS/splits-8b-$w.txt"
  done
  for w in bf16 int4-g128; do
    timeout 150 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1 --steps 16 --graphs off --profile --weights "$w" 2>&1 | tee "$RESULTS/launches-8b-$w.txt"
  done
fi
if named f4; then
  # Dense weights with four features per warp (MgemvSplits.SPLIT_K_F4): the kernel tests, the
  # decode steps against the CPU engine, then 8B and 1B BF16 decode under the old and new splits,
  # same weights, one run each (the 8B twice).
  junit f4 --select-method 'io.kvant.cuda.model.QuantizedKernelsGpuTest#mgemvMatchesTheReferenceForDenseWeights(int)' \
    --select-method 'io.kvant.cuda.model.QuantizedKernelsGpuTest#fusedMgemvMatchesTheReference(int)' \
    --select-method 'io.kvant.cuda.model.CudaModelGpuTest#fusedDecodeStepsAgreeWithTheCpuEngine(java.lang.String)'
  for i in 1 2; do
    timeout 150 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,4 --steps 64 \
      --splits split-k,split-k-f4 --weights bf16 2>&1 | tee -a "$RESULTS/f4.txt"
  done
  timeout 120 "${CUDABENCH[@]}" decode --shape llama-3.2-1b --batch 1,16 --steps 64 \
    --splits split-k,split-k-f4 2>&1 | tee -a "$RESULTS/f4.txt"
fi
if named mq4; then
  # INT4 on the tensor cores (mq4, the tiled layout): the kernel tests against the float64
  # reference, the products and tile decodes, the quantized models against the CPU engine; then
  # the products alone and 8B / 1B decode with the row-major (mgemv) and tiled (mq4) layouts.
  junit mq4 --select-method 'io.kvant.cuda.model.QuantizedKernelsGpuTest#mqMatchesTheReference(int)' \
    --select-method 'io.kvant.cuda.model.QuantizedKernelsGpuTest#productsMatchTheReference(int)' \
    --select-method 'io.kvant.cuda.model.QuantizedKernelsGpuTest#decodeKernelsGiveTheLayoutsValuesExactly(java.lang.String)' \
    --select-method 'io.kvant.cuda.model.QuantizedKernelsGpuTest#mgemvMatchesTheReferenceForEveryKindAndVariant(int)' \
    --select-method 'io.kvant.cuda.model.QuantizedKernelsGpuTest#fusedMgemvMatchesTheReference(int)' \
    --select-method 'io.kvant.cuda.model.CudaModelGpuTest#quantizedWeightsAgreeWithTheCpuEngine(java.lang.String)' \
    --select-method 'io.kvant.cuda.model.CudaModelGpuTest#fusedDecodeStepsAgreeWithTheCpuEngine(java.lang.String)'
  grep -h "^GPU-vs-CPU" "$RESULTS/mq4.txt" > "$RESULTS/comparisons.txt" || true
  timeout 120 "${CUDABENCH[@]}" gemv --weights int4-g128 --rows 1,8,16 2>&1 | tee "$RESULTS/mq4-gemv.txt"
  for l in rows tiled rows tiled; do
    timeout 100 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,8,16 --steps 64 \
      --weights int4-g128 --layout $l 2>&1 | tee -a "$RESULTS/mq4-decode.txt"
  done
  for l in rows tiled; do
    timeout 100 "${CUDABENCH[@]}" decode --shape llama-3.2-1b --batch 1,16 --steps 64 \
      --weights int4-g128 --layout $l 2>&1 | tee -a "$RESULTS/mq4-decode.txt"
  done
fi
if named mq8; then
  # 8-bit codes on the tensor cores (mq8, the tiled INT8 / FP8 E4M3 / Q8_0 layouts): the kernel
  # tests against the float64 reference, products and tile decodes of every layout, the model
  # tests against the CPU engine (W8A8 on its own backend, row-major codes); then the products.
  junit mq8 --select-class io.kvant.cuda.model.QuantizedKernelsGpuTest \
    --select-class io.kvant.cuda.model.W8a8GpuTest \
    --select-class io.kvant.cuda.model.CudaModelGpuTest
  grep -h "^GPU-vs-CPU" "$RESULTS/mq8.txt" > "$RESULTS/comparisons.txt" || true
  timeout 150 "${CUDABENCH[@]}" gemv --weights int8,fp8-e4m3,int4-g128 --rows 1,4,8,16 2>&1 \
    | tee "$RESULTS/mq8-gemv.txt"
fi
if named mq8decode; then
  # 8B decode with 8-bit weights, row-major (mgemv / F16 tiles) against tiled (mq8), alternated.
  for l in rows tiled rows tiled; do
    timeout 100 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,4,8,16 --steps 64 \
      --weights fp8-e4m3 --layout $l 2>&1 | tee -a "$RESULTS/mq8-decode.txt"
  done
  for l in rows tiled; do
    timeout 100 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,8,16 --steps 64 \
      --weights int8 --layout $l 2>&1 | tee -a "$RESULTS/mq8-decode.txt"
  done
  # the norm folded into the tensor-core products (measured for mgemv only so far)
  for w in fp8-e4m3 int4-g128; do
    timeout 100 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,8 --steps 64 \
      --weights $w --fuse products,products-and-norm 2>&1 | tee -a "$RESULTS/mq8-decode.txt"
  done
fi
if named select; then
  # Any JUnit selection, given as console-launcher arguments in $SELECT (word-split), each test's
  # result printed as it ends (JUNIT_DETAILS=testfeed), so a run cut by its timeout still says
  # which tests passed ("tree" prints only at the end: a cut run printed nothing, session 11).
  # shellcheck disable=SC2086
  JUNIT_DETAILS=testfeed junit select $SELECT
  grep -h "^GPU-vs-CPU" "$RESULTS/select.txt" > "$RESULTS/comparisons.txt" || true
fi
if named mq8quick; then
  # The 8-bit products alone and 8B decode with row-major and tiled 8-bit codes, one run each
  # (mq8decode's short form, for a call that also runs tests).
  timeout 80 "${CUDABENCH[@]}" gemv --weights int8,fp8-e4m3 --rows 1,8,16 2>&1 | tee "$RESULTS/mq8-gemv.txt"
  for w in fp8-e4m3 int8; do
    for l in rows tiled; do
      timeout 60 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,8,16 --steps 32 \
        --weights $w --layout $l 2>&1 | tee -a "$RESULTS/mq8-decode.txt"
    done
  done
fi
await_server() {  # await_server LOG PID SECONDS: until LOG says it serves, PID exits or time is up
  local log=$1 pid=$2 i
  for ((i = 1; i <= $3; i++)); do
    grep -q "listening\|serving" "$log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 1
  done
  waited=$i
}

if named kvcenter; then
  # Centered keys on the 8B shape (synthetic statistics: the work is the same for any values)
  # against per-token-mse, FP8 KV, 1,024-token prompts.
  timeout 110 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,16 --prompt 1024 --steps 32 \
    --kv fp8 --kv-encoding per-token-mse,centered-mse,centered-qmse 2>&1 | tee "$RESULTS/kvcenter.txt"
  # the same over INT4 g128 weights (a shorter step, so the append's share is larger), 128-token
  # prompts as the headline's
  timeout 110 "${CUDABENCH[@]}" decode --shape llama-3-8b --weights int4-g128 --batch 1,16 \
    --prompt 128 --steps 64 --kv fp8 --kv-encoding per-token-mse,centered-mse,centered-qmse 2>&1 |
    tee "$RESULTS/kvcenter-int4.txt"
fi
if named kvcenterquick; then
  # kvcenter's INT4 g128 run and kvcentereval's centered-qmse rows, for a short call
  timeout 110 "${CUDABENCH[@]}" decode --shape llama-3-8b --weights int4-g128 --batch 1,16 \
    --prompt 128 --steps 64 --kv fp8 --kv-encoding per-token-mse,centered-mse,centered-qmse 2>&1 |
    tee "$RESULTS/kvcenter-int4.txt"
  for m in shared/models/stories260K/stories260K.gguf shared/models/tinystories-656k \
    models/kvant-kjv-7m.gguf; do
    echo "== eval $m fp8 centered-qmse cuda" | tee -a "$RESULTS/kvcenter-eval.txt"
    timeout 40 "${KVANT[@]}" eval --model "$m" --weights f32 --device cuda --kv fp8 \
      --kv-encoding centered-qmse 2>&1 | tail -2 | tee -a "$RESULTS/kvcenter-eval.txt"
  done
fi
if named kvcentereval; then
  # Centered FP8 keys on real text on the GPU (issue 15: FP8 KV against full-precision KV): eval
  # --device cuda calibrates at load on the CPU, then compares the candidate KV with F32 KV on the
  # same engine; stories260K's default beside it.
  for ke in stories260K/stories260K.gguf:per-token-mse stories260K/stories260K.gguf:centered-mse \
    stories260K/stories260K.gguf:centered-qmse tinystories-656k:per-token-mse \
    tinystories-656k:centered-qmse kjv:per-token-mse kjv:centered-qmse; do
    m="shared/models/${ke%%:*}"
    [[ "${ke%%:*}" == kjv ]] && m=models/kvant-kjv-7m.gguf
    echo "== eval $m fp8 ${ke##*:} cuda" | tee -a "$RESULTS/kvcenter-eval.txt"
    timeout 90 "${KVANT[@]}" eval --model "$m" --weights f32 --device cuda --kv fp8 \
      --kv-encoding "${ke##*:}" 2>&1 | tail -4 | tee -a "$RESULTS/kvcenter-eval.txt"
  done
fi
if named mq32; then
  # The tiled products at 17-32 rows (MgemvSplits.MQ_32, four mmas per fragment, session 12, not
  # yet run on a GPU): the kernel and model tests, then the products and 8B decode against the
  # default policy (F16 tiles + cuBLASLt from 17 rows), one run each.
  JUNIT_TIMEOUT=${TESTS_TIMEOUT:-300} JUNIT_DETAILS=testfeed junit mq32 \
    --select-method 'io.kvant.cuda.model.QuantizedKernelsGpuTest#mqMatchesTheReference(int)' \
    --select-method 'io.kvant.cuda.model.CudaModelGpuTest#tiledProductsOfUpTo32RowsAgreeWithTheCpuEngine(java.lang.String)' \
    --select-method 'io.kvant.cuda.model.MgemvSplitsTest#onlyTheMq32PoliciesGiveTheTiledProductsMoreThanSixteenRowsAndEveryPolicyPicksASplitWithKernels()'
  grep -h "^GPU-vs-CPU" "$RESULTS/mq32.txt" > "$RESULTS/comparisons.txt" || true
  timeout 100 "${CUDABENCH[@]}" gemv --weights int4-g128,int8,fp8-e4m3 --rows 16,24,32 2>&1 | tee "$RESULTS/mq32-gemv.txt"
  for w in int4-g128 fp8-e4m3; do
    timeout 100 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 16,24,32 --steps 32 \
      --weights $w --splits split-k-f4,mq-32 2>&1 | tee -a "$RESULTS/mq32-decode.txt"
  done
fi
if named mq8k16; then
  # 8-bit codes on K16U2 at 9-16 rows (MgemvSplits.MQ_32_K16U2_8BIT; session 14's gemv table had
  # it faster on three of the four 8B matrices) against the default's K8U4, in whole 8B decode
  # steps, one run per weight kind. If it wins, it becomes the default's rule.
  # SIGQUIT first: a JVM that hangs prints its threads before it is killed (session 15's FP8 run
  # printed nothing in 120 s)
  for w in ${MQ8K16_WEIGHTS:-fp8-e4m3 int8}; do
    timeout --signal=QUIT --kill-after=15 120 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 12,16 --steps 32 \
      --weights $w --splits mq-32,mq-32-k16u2-8bit 2>&1 | tee -a "$RESULTS/mq8k16-decode.txt"
  done
fi
if named mq4check; then
  # The decode figures of the merged code: INT4 g128 8B with the row-major and tiled layouts.
  for l in rows tiled; do
    timeout 100 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,8,16 --steps 64 \
      --weights int4-g128 --layout $l 2>&1 | tee -a "$RESULTS/mq4-decode.txt"
  done
fi
if wants hotswap; then
  junit hotswap --select-class io.kvant.server.e2e.HotSwapCudaGpuTest
fi
if wants gemv; then
  # The product kernels alone on 8B-shaped matrices (how the forward pass picks among them).
  timeout 300 "${CUDABENCH[@]}" gemv 2>&1 | tee "$RESULTS/gemv.txt"
fi
if wants decode; then
  timeout 150 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,16,64,256 2>&1 | tee "$RESULTS/decode-8b.txt"
  for w in int8 fp8-e4m3 int4-g128; do
    timeout 150 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,16,64,256 --weights "$w" 2>&1 | tee "$RESULTS/decode-8b-$w.txt"
  done
  timeout 120 "${CUDABENCH[@]}" decode --shape llama-3.2-1b --batch 1,16,64,256 2>&1 | tee "$RESULTS/decode-1b.txt"
fi
if wants fused; then
  # Few-row decode: the three decode fusion modes, same weights, one run.
  for w in bf16 int8 int4-g128; do
    timeout 150 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,4 --fuse off,products,products-and-norm --weights "$w" 2>&1 | tee "$RESULTS/fused-8b-$w.txt"
  done
  timeout 120 "${CUDABENCH[@]}" decode --shape llama-3.2-1b --batch 1 --fuse off,products,products-and-norm 2>&1 | tee "$RESULTS/fused-1b.txt"
fi
if wants peers; then
  # PyTorch's own products (bf16, int4 tinygemm, FP8 _scaled_mm) on the same matrices, same call.
  timeout 300 python3 "$(dirname "${BASH_SOURCE[0]}")/peer_gemv.py" 2>&1 | tee "$RESULTS/peers.txt"
fi
if wants pdl; then
  # Programmatic dependent launch on and off, same weights, one run per format.
  timeout 150 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,4,16 --pdl both 2>&1 | tee "$RESULTS/pdl-8b-bf16.txt"
  for w in int8 fp8-e4m3 int4-g128; do
    timeout 150 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,4 --pdl both --weights "$w" 2>&1 | tee "$RESULTS/pdl-8b-$w.txt"
  done
  timeout 120 "${CUDABENCH[@]}" decode --shape llama-3.2-1b --batch 1,16 --pdl both 2>&1 | tee "$RESULTS/pdl-1b.txt"
fi
if wants attn; then
  # Attention on the per-row kernels and the tiled kernel (split over positions for decode),
  # same weights, one run: short (128) and long (1,024) prompts.
  timeout 200 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,4,16,64 --steps 64 --attention rows,tiled 2>&1 | tee "$RESULTS/attn-8b-128.txt"
  timeout 200 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,16 --prompt 1024 --steps 32 --attention rows,tiled 2>&1 | tee "$RESULTS/attn-8b-1024.txt"
fi
if named check; then
  # One quick decode run (8B BF16 at 1, 16 and 64 sequences): a check of a change's speed.
  timeout 150 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,16,64 2>&1 | tee "$RESULTS/check-8b.txt"
fi
if named ab; then
  # The same decode run on the base commit's engine-cuda jar (.device/base/, first on the class
  # path: its classes and its kvant.cu) and on this checkout's: a regression check across commits
  # in one call. Make the base jar here with
  #   git worktree add /tmp/kvant-base BASE && (cd /tmp/kvant-base && ./mvnw -q -B -DskipTests \
  #     package -pl engine-cuda -am) && mkdir -p .device/base && \
  #   cp /tmp/kvant-base/engine-cuda/target/kvant-engine-cuda-*[0-9T].jar .device/base/
  # AB_ARGS: CudaBench decode's arguments for both (default: long prompts, 1,024 tokens, so the
  # prefill column shows the attention of prefill chunks); AB_ROUNDS (default 1) alternates
  # base, new, base, new, ... so drift between the runs shows.
  # AB_BASE_DIR / AB_NEW_DIR (folders under .device/, default base and none): the jars each side
  # puts first on the class path, so two candidates built elsewhere compare in one call.
  BASECP=$(ls "$PACK"/"${AB_BASE_DIR:-base}"/*.jar | tr '\n' ':')$CP
  NEWCP=$CP
  [[ -n "${AB_NEW_DIR:-}" ]] && NEWCP=$(ls "$PACK"/"$AB_NEW_DIR"/*.jar | tr '\n' ':')$CP
  read -r -a ab_args <<< "${AB_ARGS:---shape llama-3-8b --batch 1,16 --prompt 1024 --steps 64}"
  # Each jar's kernels compiled (and cached on disk) before any timed run: on a fresh machine
  # NVRTC took the first round's whole AB_TIMEOUT twice (sessions 22 and 24).
  timeout 300 "${JAVA[@]}" -cp "$BASECP" io.kvant.cuda.bench.CudaBench bandwidth --gib 1 > /dev/null 2>&1 || true
  timeout 300 "${JAVA[@]}" -cp "$NEWCP" io.kvant.cuda.bench.CudaBench bandwidth --gib 1 > /dev/null 2>&1 || true
  for ((round = 1; round <= ${AB_ROUNDS:-1}; round++)); do
    echo "== round $round: base" | tee -a "$RESULTS/ab-base.txt"
    timeout "${AB_TIMEOUT:-200}" "${JAVA[@]}" -Xmx8g -cp "$BASECP" io.kvant.cuda.bench.CudaBench decode "${ab_args[@]}" 2>&1 | grep -v "^WARNING" | tee -a "$RESULTS/ab-base.txt"
    echo "== round $round: new" | tee -a "$RESULTS/ab-new.txt"
    timeout "${AB_TIMEOUT:-200}" "${JAVA[@]}" -Xmx8g -cp "$NEWCP" io.kvant.cuda.bench.CudaBench decode "${ab_args[@]}" 2>&1 | grep -v "^WARNING" | tee -a "$RESULTS/ab-new.txt"
  done
fi
if wants benchdevice; then
  # bench decode/batch --device cuda: the backend's forward pass over paged KV on the GPU, on the
  # bundled model and on a 1B-shaped synthetic F16 model.
  "${BENCH[@]}" decode --model models/kvant-kjv-7m.gguf --device cuda --tokens 256 2>&1 | tee "$RESULTS/bench-device.txt"
  "${BENCH[@]}" batch --model models/kvant-kjv-7m.gguf --device cuda --concurrency 1,16,64 --tokens 128 2>&1 | tee -a "$RESULTS/bench-device.txt"
  timeout 240 "${BENCH[@]}" synth --shape llama-3.2-1b --weights F16 --out /tmp/synth-1b.gguf 2>&1 | tail -1
  "${BENCH[@]}" batch --model /tmp/synth-1b.gguf --device cuda --concurrency 1,16,64 --tokens 64 2>&1 | tee -a "$RESULTS/bench-device.txt"
fi
if wants kv; then
  # INT8 and FP8 KV on the 8B shape (the decode section has F16 KV): tokens per GiB, sequences of
  # 2,048 tokens that fit, decode speed.
  for kv in int8 fp8; do
    timeout 150 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,16,64,256 --kv "$kv" 2>&1 | tee "$RESULTS/decode-8b-kv-$kv.txt"
  done
fi
if named kvenc; then
  # The KV encodings on the GPU (issue 15): decode speed on the 8B shape with 1,024-token prompts,
  # then quality on real text (F32 weights, the candidate's KV INT8/FP8 against F32 KV, same engine).
  timeout 280 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,16,64 --prompt 1024 --steps 64 \
    --kv int8 --kv-encoding per-token,kivi,kivi-mse 2>&1 | tee "$RESULTS/kvenc-decode-int8.txt"
  timeout 200 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,16,64 --prompt 1024 --steps 64 \
    --kv fp8 --kv-encoding per-token,per-token-mse 2>&1 | tee "$RESULTS/kvenc-decode-fp8.txt"
  for m in shared/models/stories260K/stories260K.gguf shared/models/tinystories-656k models/kvant-kjv-7m.gguf; do
    for ke in int8:per-token int8:kivi int8:kivi-mse fp8:per-token fp8:per-token-mse; do
      echo "== eval $m ${ke%%:*} ${ke##*:} cuda" | tee -a "$RESULTS/kvenc-eval.txt"
      timeout 90 "${KVANT[@]}" eval --model "$m" --weights f32 --device cuda --kv "${ke%%:*}" \
        --kv-encoding "${ke##*:}" 2>&1 | tail -3 | tee -a "$RESULTS/kvenc-eval.txt"
    done
  done
fi
if wants eval; then
  # The same artifact on both engines, on real text: perplexity and agreement with full precision.
  for m in shared/models/stories260K/stories260K.gguf shared/models/tinystories-656k models/kvant-kjv-7m.gguf; do
    for r in fp8 w4g128; do
      for d in cpu cuda; do
        echo "== eval $m $r $d" | tee -a "$RESULTS/eval.txt"
        timeout 90 "${KVANT[@]}" eval --model "$m" --weights "$r" --device "$d" 2>&1 | tail -25 | tee -a "$RESULTS/eval.txt"
      done
    done
  done
fi
if named tall; then
  # 8B decode, the tall products (gate/up with SwiGLU, 14,336 rows) of 1-8 rows on K16U2 (mq-32)
  # against K8U4 for every code and for INT4 only (mq-32-tall-int4-k8u4, the default since session
  # 17: ncu showed K16U2's gate/up with one 512-thread block per SM, 6.8 waves), same weights.
  for w in ${TALL_WEIGHTS:-int4-g128 fp8-e4m3}; do
    timeout 200 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,4,8 --steps 64 \
      --splits "${TALL_SPLITS:-mq-32,mq-32-tall-k8u4,mq-32-tall-int4-k8u4}" --weights "$w" 2>&1 | grep -v "^WARNING" | tee -a "$RESULTS/tall.txt"
  done
fi
if named staged; then
  # The staged tiled products (mqs: activations in F16, scales and zero points in shared memory,
  # weights through cp.async; session 18): the reference test over every split, the products
  # alone, then 8B decode against the default, same weights, one run per weight format.
  # a cubin compiled here (nvcc -arch=sm_90 -cubin kvant.cu) as .device/kvant.cubin.xz: its SASS
  if [[ -f "$PACK/kvant.cubin.xz" ]] && command -v cuobjdump > /dev/null; then
    xz -dc "$PACK/kvant.cubin.xz" > /tmp/kvant.cubin
    for f in ${STAGED_SASS:-mq4_k16s4_plain mq4_k16u2_plain}; do
      cuobjdump -sass -fun "$f" /tmp/kvant.cubin > "$RESULTS/sass-$f.txt" 2>&1
    done
  fi
  # STAGED_TESTS: test methods (Class#method(params), space-separated) in place of the kernel
  # test, or none
  sel=()
  for t in ${STAGED_TESTS:-QuantizedKernelsGpuTest#mqMatchesTheReference(int)}; do
    sel+=(--select-method "io.kvant.cuda.model.$t")
  done
  if [[ "${STAGED_TESTS:-}" != none ]]; then
    JUNIT_TIMEOUT=${STAGED_TEST_TIMEOUT:-200} junit staged-test "${sel[@]}"
    grep -h "^GPU-vs-CPU" "$RESULTS/staged-test.txt" > "$RESULTS/staged-comparisons.txt" || true
  fi
  if [[ "${STAGED_GEMV:-1}" == 1 ]]; then
    timeout 150 "${CUDABENCH[@]}" gemv --weights int4-g128,fp8-e4m3 --rows 1,8 2>&1 | grep -v "^WARNING" | grep -E "device|mq|rows|---" | tee "$RESULTS/staged-gemv.txt"
  fi
  for w in ${STAGED_WEIGHTS:-int4-g128 fp8-e4m3}; do
    timeout "${STAGED_DECODE_TIMEOUT:-200}" "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,4,8 --steps 64 \
      --splits "${STAGED_SPLITS:-mq-32-tall-int4-k8u4,mq-staged-k8,mq-staged-k16}" \
      --fuse "${STAGED_FUSE:-products,products-and-norm}" --weights "$w" 2>&1 | grep -v "^WARNING" | tee -a "$RESULTS/staged.txt"
  done
fi
if named sampled; then
  # What the device's sampling kernel costs in whole decode steps: the same 8B INT4 decode drawn
  # greedily and at a temperature with top-p / top-k (CudaBench --sample; one JVM each).
  # SAMPLE_SPECS: --sample values; SAMPLE_ARGS: the rest of CudaBench decode's arguments.
  read -r -a sample_args <<< "${SAMPLE_ARGS:---shape llama-3-8b --batch 1,64 --steps 64 --weights int4-g128}"
  for spec in ${SAMPLE_SPECS:-greedy 0.8:0.9:0 0.8:1:40}; do
    echo "== --sample $spec" | tee -a "$RESULTS/sampled.txt"
    timeout "${SAMPLE_TIMEOUT:-200}" "${CUDABENCH[@]}" decode "${sample_args[@]}" --sample "$spec" 2>&1 | grep -v "^WARNING" | tee -a "$RESULTS/sampled.txt"
  done
fi
if named samplecheck; then
  # The device sampling kernel as rewritten in session 22 (histogram thresholds): its GPU tests
  # against SampleReference, then sampled 8B INT4 decode on .device/base's engine-cuda jar (the
  # kernel before) and this checkout's, alternated SAMPLECHECK_ROUNDS times (default 1), for each
  # of SAMPLE_SPECS (default top-p 0.9 and top-k 40 at T 0.8) and greedy as the control.
  T=io.kvant.cuda.device.CudaKernelsGpuTest
  junit samplecheck-test --select-method "$T#samplingMatchesTheReferenceOnRandomRows(int)" \
    --select-method "$T#greedySamplingIsTheArgmaxWithTheLowestIdAmongTies" \
    --select-method "$T#topKOfOneIsGreedyAndTopPKeepsOnlyTheNucleus" \
    --select-method "$T#temperatureSamplingFollowsTheSoftmax" \
    --select-method 'io.kvant.cuda.model.CudaModelGpuTest#stories260KGreedyOnTheDeviceGivesTheGoldenIds()'
  grep -h "^sample vs reference" "$RESULTS/samplecheck-test.txt" || true
  # AB_BASE_DIR / AB_NEW_DIR (folders under .device/, default base and none): the jars each side
  # puts first on the class path, so two candidates built elsewhere compare in one call.
  BASECP=$(ls "$PACK"/"${AB_BASE_DIR:-base}"/*.jar | tr '\n' ':')$CP
  NEWCP=$CP
  [[ -n "${AB_NEW_DIR:-}" ]] && NEWCP=$(ls "$PACK"/"$AB_NEW_DIR"/*.jar | tr '\n' ':')$CP
  for spec in ${SAMPLE_SPECS:-0.8:0.9:0 0.8:1:40} greedy; do
    for ((round = 1; round <= ${SAMPLECHECK_ROUNDS:-1}; round++)); do
      for side in base new; do
        cp=$CP
        [[ $side == base ]] && cp=$BASECP
        echo "== --sample $spec, round $round: $side" | tee -a "$RESULTS/samplecheck.txt"
        timeout "${SAMPLE_TIMEOUT:-150}" "${JAVA[@]}" -Xmx8g -cp "$cp" io.kvant.cuda.bench.CudaBench decode \
          --shape llama-3-8b --batch 1,64 --steps 64 --weights int4-g128 --sample "$spec" 2>&1 |
          grep -E "^\| (1|64) " | tee -a "$RESULTS/samplecheck.txt"
      done
    done
  done
  # min-p (new in session 22; the base jar's CudaBench has no fourth field)
  for spec in ${MINP_SPECS:-0.8:1:0:0.05}; do
    echo "== --sample $spec: new" | tee -a "$RESULTS/samplecheck.txt"
    timeout "${SAMPLE_TIMEOUT:-150}" "${JAVA[@]}" -Xmx8g -cp "$CP" io.kvant.cuda.bench.CudaBench decode \
      --shape llama-3-8b --batch 1,64 --steps 64 --weights int4-g128 --sample "$spec" 2>&1 |
      grep -E "^\| (1|64) " | tee -a "$RESULTS/samplecheck.txt"
  done
fi
if named decodeattn; then
  # attention_decode (session 24): RoPE, the KV append, attention and its merge in one launch per
  # layer. Its kernel test against the three kernels, the RoPE tests (rope_pair rounds as the
  # CPU), the model tests under PRODUCTS_AND_ATTENTION; then 8B decode, products against
  # products-and-attention, same weights, one run per format, and long prompts. DA_KV_ARGS adds
  # CudaBench options to those runs (e.g. "--kv int8 --kv-encoding kivi").
  JUNIT_DETAILS=testfeed junit decodeattn-test --select-class io.kvant.cuda.device.CudaKernelsGpuTest \
    --select-class io.kvant.cuda.model.CudaModelGpuTest \
    --include-methodname "${DA_TESTS:-.*(attentionDecode|pagedAttention|[rR]ope|oneLaunchDecodeAttention|stagedSingleRowDecode).*}"
  grep -h "^GPU-vs-CPU" "$RESULTS/decodeattn-test.txt" || true
  for weights in ${DA_WEIGHTS:-int4-g128 fp8-e4m3}; do
    echo "== $weights" | tee -a "$RESULTS/decodeattn.txt"
    # shellcheck disable=SC2086 # DA_BATCH and DA_KV_ARGS are word lists
    timeout "${DA_TIMEOUT:-200}" "${CUDABENCH[@]}" decode --shape llama-3-8b --weights "$weights" \
      --batch ${DA_BATCH:-1,16,64} --steps 64 --fuse products,products-and-attention ${DA_KV_ARGS:-} 2>&1 |
      tee -a "$RESULTS/decodeattn.txt" | grep -E "^\|"
  done
  for weights in ${DA_LONG-int4-g128}; do
    echo "== $weights --prompt ${DA_PROMPT:-1024}" | tee -a "$RESULTS/decodeattn.txt"
    # shellcheck disable=SC2086 # DA_KV_ARGS is a word list
    timeout "${DA_TIMEOUT:-200}" "${CUDABENCH[@]}" decode --shape llama-3-8b --weights "$weights" \
      --batch 1,16 --prompt "${DA_PROMPT:-1024}" --steps 64 --fuse products,products-and-attention ${DA_KV_ARGS:-} 2>&1 |
      tee -a "$RESULTS/decodeattn.txt" | grep -E "^\|"
  done
fi
if named wide; then
  # mqw (session 23): its reference test and the whole-model comparison, then 8B decode steps at
  # 33-256 sequences on MQ_STAGED (F16 tiles + cuBLASLt above 32 rows) against MQ_WIDE (mqw to 192), same
  # weights, one run per format; FP8 also with W8A8 (which takes FP8 from 16 rows either way).
  junit wide-test --select-method 'io.kvant.cuda.model.QuantizedKernelsGpuTest#mqwMatchesTheReference(int)' \
    --select-method 'io.kvant.cuda.model.CudaModelGpuTest#wideTiledProductsAgreeWithTheCpuEngine(java.lang.String)'
  grep -h "wide tiled" "$RESULTS/wide-test.txt" || true
  for weights in ${WIDE_WEIGHTS:-int4-g128 fp8-e4m3}; do
    echo "== $weights" | tee -a "$RESULTS/wide.txt"
    timeout "${WIDE_TIMEOUT:-150}" "${CUDABENCH[@]}" decode --shape llama-3-8b --weights "$weights" \
      --batch ${WIDE_BATCH:-33,64,128,256} --steps 32 --splits mq-staged,mq-wide 2>&1 | tee -a "$RESULTS/wide.txt" | grep -E "^\|"
  done
  if [[ -n "${WIDE_W8A8-fp8-e4m3}" ]]; then
    echo "== ${WIDE_W8A8-fp8-e4m3} --w8a8 16" | tee -a "$RESULTS/wide.txt"
    timeout "${WIDE_TIMEOUT:-150}" "${CUDABENCH[@]}" decode --shape llama-3-8b --weights "${WIDE_W8A8-fp8-e4m3}" \
      --batch ${WIDE_BATCH:-33,64,128,256} --steps 32 --w8a8 16 2>&1 | tee -a "$RESULTS/wide.txt" | grep -E "^\|"
  fi
fi
if named headline; then
  # Issue 15's decode figures on whatever card came: 8B shape, HEADLINE_BATCH rows (default
  # 1,16,64,256), 128-token prompts, 64 steps, every default (splits, fusion, F16 KV), for
  # HEADLINE_WEIGHTS (default int4-g128 fp8-e4m3); CudaBench prints the copy bandwidth measured in
  # the same process and each figure's share of it. HEADLINE_ARGS adds CudaBench options.
  # shellcheck disable=SC2086 # HEADLINE_ARGS is a word list
  for w in ${HEADLINE_WEIGHTS:-int4-g128 fp8-e4m3}; do
    timeout "${HEADLINE_TIMEOUT:-200}" "${CUDABENCH[@]}" decode --shape llama-3-8b --batch "${HEADLINE_BATCH:-1,16,64,256}" \
      --prompt 128 --steps 64 --weights "$w" ${HEADLINE_ARGS:-} 2>&1 | grep -v "^WARNING" | tee -a "$RESULTS/headline.txt"
  done
fi
if named splitsab; then
  # The products' splits compared in one process (a pass per policy, same weights): 8B decode,
  # SPLITSAB_BATCH rows (default 1), 128-token prompts, 64 steps, policies SPLITSAB_SPLITS (default
  # the one-row staged variants against session 28's default and today's; a policy named twice runs
  # once, so name the default's twin, mq-wide-k16s4 for 8-bit codes, last to see the drift between
  # passes), weights
  # SPLITSAB_WEIGHTS (default int4-g128 fp8-e4m3).
  for w in ${SPLITSAB_WEIGHTS:-int4-g128 fp8-e4m3}; do
    timeout "${SPLITSAB_TIMEOUT:-240}" "${CUDABENCH[@]}" decode --shape llama-3-8b --batch "${SPLITSAB_BATCH:-1}" \
      --prompt 128 --steps 64 --weights "$w" \
      --splits "${SPLITSAB_SPLITS:-mq-wide-k16s4,mq-wide,mq-wide-k8s4,mq-wide-tall-k8s4}" 2>&1 |
      grep -v "^WARNING" | tee -a "$RESULTS/splitsab.txt"
  done
fi
if named step1; then
  # Single-stream 8B decode (issue 15's 600 / 330 tok/s): the RMSNorm folded into the tiled
  # products against its own launch, same weights, one run; then where a batch-1 step's time goes
  # (events around each live launch, graphs off).
  for w in ${STEP1_WEIGHTS:-int4-g128 fp8-e4m3}; do
    timeout 200 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1,16 --steps 64 \
      --fuse products,products-and-norm --weights "$w" 2>&1 | grep -v "^WARNING" | tee -a "$RESULTS/step1.txt"
    timeout 150 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1 --steps 16 --graphs off \
      --profile --weights "$w" 2>&1 | grep -v "^WARNING" | tee "$RESULTS/launches-8b-$w.txt"
  done
fi
if named rows; then
  # attention_rows (--fuse products-and-warp-attention: a warp per range of 32 positions, compiled
  # per head size and KV type, merged in the block) against attention_decode (products-and-
  # attention), 8B decode in one process per order so drift between the two shows: ROWS_WEIGHTS
  # (default int4-g128 fp8-e4m3), ROWS_BATCH rows (default 1,16,64), ROWS_PROMPT-token prompts
  # (default 128), 64 steps; ROWS_ARGS adds CudaBench options (e.g. "--kv int8"). Then each
  # kernel's time per launch under ncu at one row (ROWS_NCU_PROMPT, default 128; caches left as
  # the step leaves them; ROWS_NCU=0 skips it), and ROWS_LONG: one row at a 2,000-token prompt
  # (64 ranges in 8 blocks). ROWS_ORDERS=one runs only the first order.
  # shellcheck disable=SC2086 # ROWS_ARGS is a word list
  for w in ${ROWS_WEIGHTS:-int4-g128 fp8-e4m3}; do
    orders="products-and-attention,products-and-warp-attention products-and-warp-attention,products-and-attention"
    [[ "${ROWS_ORDERS:-both}" == one ]] && orders=${orders%% *}
    for order in $orders; do
      timeout "${ROWS_TIMEOUT:-200}" "${CUDABENCH[@]}" decode --shape llama-3-8b --batch "${ROWS_BATCH:-1,16,64}" \
        --prompt "${ROWS_PROMPT:-128}" --steps 64 --fuse "$order" --weights "$w" ${ROWS_ARGS:-} 2>&1 | grep -v "^WARNING" | tee -a "$RESULTS/rows.txt"
    done
  done
  if [[ -n "${ROWS_LONG:-}" ]]; then
    timeout 200 "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1 --prompt 2000 --steps 32 \
      --fuse products-and-attention,products-and-warp-attention --weights int4-g128 ${ROWS_ARGS:-} 2>&1 | grep -v "^WARNING" | tee -a "$RESULTS/rows.txt"
  fi
  for f in products-and-attention products-and-warp-attention; do
    [[ "${ROWS_NCU:-1}" == 1 ]] || break
    timeout 200 ncu --clock-control none --cache-control none --csv --print-units base --metrics gpu__time_duration.sum \
      --kernel-name "regex:^attention_(decode|rows)" --launch-skip 64 --launch-count 32 \
      "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1 --prompt "${ROWS_NCU_PROMPT:-128}" --steps 4 --graphs off \
      --fuse "$f" --weights int4-g128 ${ROWS_ARGS:-} > "$RESULTS/rows-ncu-$f.csv" 2> "$RESULTS/rows-ncu-$f.err"
    python3 - "$RESULTS/rows-ncu-$f.csv" <<'PY' | tee "$RESULTS/rows-ncu-$f.txt"
import csv, sys, collections
lines = [l for l in open(sys.argv[1], newline="") if l.startswith('"')]
t = collections.defaultdict(list)
for r in csv.DictReader(lines):
    if r.get("Metric Name") == "gpu__time_duration.sum":
        t[r["Kernel Name"].split("(")[0] + " " + r.get("Grid Size", "")].append(float(r["Metric Value"].replace(",", "")) / 1000)
for k, v in t.items():
    v.sort()
    print(f"{k}: {len(v)} launches, mean {sum(v) / len(v):.2f} us, median {v[len(v) // 2]:.2f}, min {v[0]:.2f}")
PY
  done
fi
if named attnsrc; then
  # Where attention_decode's warps wait, by SASS instruction (ncu's warp-state sampling on the
  # source page), for one launch of a one-row 8B decode step at a 128-token prompt (events put it
  # at 28.5 us a layer, session 26): ATTNSRC_SKIP launches of it are passed over (the prefill's
  # and the first steps'), ATTNSRC_ARGS adds CudaBench options (e.g. "--kv int8 --kv-encoding
  # kivi"), ATTNSRC_NCU adds ncu options (e.g. "--cache-control none --warp-sampling-interval 0":
  # ncu flushes the caches before the profiled launch by default, so its instruction fetches start
  # cold, which a live step's need not; and the default interval gave only 651 samples, session
  # 27). tools/gpu/ncu_source.py prints the instructions with the most samples and the share
  # between barriers.
  # shellcheck disable=SC2086 # ATTNSRC_ARGS and ATTNSRC_NCU are word lists
  timeout "${ATTNSRC_TIMEOUT:-240}" ncu --clock-control none ${ATTNSRC_NCU:-} --kernel-name "regex:^${ATTNSRC_KERNEL:-attention_decode}" \
    --launch-skip "${ATTNSRC_SKIP:-40}" --launch-count 1 --section WarpStateStats --section SourceCounters \
    --page source --print-source sass --csv \
    "${CUDABENCH[@]}" decode --shape llama-3-8b --batch "${ATTNSRC_BATCH:-1}" --prompt "${ATTNSRC_PROMPT:-128}" \
    --steps 3 --graphs off --weights "${ATTNSRC_WEIGHTS:-int4-g128}" ${ATTNSRC_ARGS:-} \
    > "$RESULTS/attnsrc.csv" 2> "$RESULTS/attnsrc.err"
  python3 "$(dirname "${BASH_SOURCE[0]}")/ncu_source.py" "$RESULTS/attnsrc.csv" 40 | tee "$RESULTS/attnsrc.txt"
fi
if named ncu1; then
  # What bounds the single-row tiled products: ncu's sections on the four products of the first
  # decode layer (the prompt's 4-row products come first: 32 layers x 4 launches + the head), under
  # NCU1_SPLITS (default mq-32, the policy session 17 profiled).
  for w in ${NCU1_WEIGHTS:-int4-g128 fp8-e4m3}; do
    k=mq4; [[ $w == fp8* ]] && k=mq8e
    k=${NCU1_KERNEL:-$k}  # e.g. "mq" with NCU1_SPLITS=mq-wide-units: mq4 for the prompt, mqp4 after
    # NCU1_SECTIONS replaces the section list, e.g. "--set full" (memory tables and stall
    # reasons by instruction); NCU1_SKIP the matching launches passed over (default 129: the
    # prompt's), e.g. NCU1_KERNEL=mqp4_plain NCU1_SKIP=0 for layer 0's o and down alone
    # shellcheck disable=SC2086 # NCU1_SECTIONS is a word list
    timeout 240 ncu --clock-control none --kernel-name "regex:^$k" --launch-skip "${NCU1_SKIP:-129}" --launch-count 4 \
      ${NCU1_SECTIONS:---section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
      --section MemoryWorkloadAnalysis --section SchedulerStats --section InstructionStats} \
      "${CUDABENCH[@]}" decode --shape llama-3-8b --batch 1 --prompt 4 --steps 2 --graphs off \
      --splits "${NCU1_SPLITS:-mq-32}" --fuse "${NCU1_FUSE:-products}" --weights "$w" > "$RESULTS/ncu1-$w.txt" 2>&1
    grep -v "^WARNING" "$RESULTS/ncu1-$w.txt" | grep -E "^  [a-z]|mq|Duration|Throughput|Occupancy|Registers|Block Size|Grid Size|Waves|Stall|Issued|Eligible|Active Warps|No Eligible|Shared Memory|Bandwidth|L2 Hit|L1/TEX Hit" | head -150
  done
fi
if named profile; then
  # Per-kernel GPU time of decode steps (graphs off so each kernel is its own launch; ncu times
  # each kernel alone, clocks left as they are): where a step's time goes. PROFILE_PROMPT (default
  # 4) sets the context the steps attend over; PROFILE_ARGS adds CudaBench options, e.g.
  # PROFILE_SPECS=fp8-e4m3:256 PROFILE_PROMPT=128 PROFILE_ARGS="--w8a8 16" for the server's
  # 256-sequence FP8 step (what bounds the aggregate figure). PROFILE_NCU adds ncu options (e.g.
  # "--launch-skip N" to pass over a prefill's launches: session 25's 256 x 128-token prefill
  # alone outlasted 400 s under ncu, so keep PROFILE_PROMPT short at 256 rows); PROFILE_TIMEOUT
  # (default 400 s) bounds each spec.
  for spec in ${PROFILE_SPECS:-bf16:1 int4-g128:1}; do
    w=${spec%%:*}; b=${spec##*:}
    # shellcheck disable=SC2086 # PROFILE_ARGS and PROFILE_NCU are lists of options
    timeout "${PROFILE_TIMEOUT:-400}" ncu --clock-control none --csv --print-units base \
      --metrics gpu__time_duration.sum ${PROFILE_NCU:-} \
      "${CUDABENCH[@]}" decode --shape "${PROFILE_SHAPE:-llama-3-8b}" --batch "$b" \
      --prompt "${PROFILE_PROMPT:-4}" --steps 3 --graphs off --weights "$w" ${PROFILE_ARGS:-} \
      > "$RESULTS/ncu-$w-$b.csv" 2> "$RESULTS/ncu-$w-$b.err"
    python3 "$(dirname "${BASH_SOURCE[0]}")/ncu_summary.py" "$RESULTS/ncu-$w-$b.csv" | tee "$RESULTS/profile-$w-$b.txt"
  done
fi
if wants serve; then
  # The gRPC server on the GPU under the load generator: 1B shape, F16 weights (bench synth).
  timeout 240 "${BENCH[@]}" synth --shape llama-3.2-1b --weights F16 --out /tmp/synth-1b.gguf 2>&1 | tail -3
  "${KVANT[@]}" serve --device cuda --model /tmp/synth-1b.gguf --name synth --port 50151 \
    --metrics-port 0 --max-seqs 256 --max-batch-tokens 8192 --kv-cache-mb auto \
    > "$RESULTS/serve.log" 2>&1 &
  server=$!
  await_server "$RESULTS/serve.log" "$server" 120
  for c in 1 16 64 256; do  # a seed per level, as in serve8bfp8
    timeout 120 "${BENCH[@]}" serve --target 127.0.0.1:50151 --model synth --concurrency "$c" \
      --seed "$c" --requests $((c * 4 > 32 ? c * 4 : 32)) --warmup "$c" --prompt-len fixed:128 \
      --output-len fixed:128 --out "$RESULTS/serve-$c.json" 2>&1 | grep -v "^WARNING" | tail -40 | tee -a "$RESULTS/serve.txt"
  done
  kill -TERM "$server"; wait "$server"
  tail -5 "$RESULTS/serve.log"
fi
if named servecpu; then
  # Issue 18's server figure where the load generator has cores of its own: the CPU engine serving
  # the bundled model pinned by SERVECPU_SPECS ("cpus:threads" each), `bench serve` pinned to
  # CLIENT_CPUS (default 8 and up; on the 2-vCPU development machine both share two cores,
  # perf/RESULTS.md session 13); 1 and 16 streams, 256 requests of 64 output tokens a level, as
  # tools/cpu/serve-ab.sh.
  client=${CLIENT_CPUS:-8-$(( $(nproc) - 1 ))}
  for spec in ${SERVECPU_SPECS:-0-1:2 0-3:4 0-7:8}; do
    cpus=${spec%%:*}; t=${spec##*:}; port=$((50160 + t))
    taskset -c "$cpus" "${JAVA[@]}" -XX:+UseParallelGC -Xmx512m -cp "$CP" io.kvant.server.cli.Main \
      serve --port "$port" --metrics-port 0 --threads "$t" > "$RESULTS/servecpu-$t.log" 2>&1 &
    server=$!
    await_server "$RESULTS/servecpu-$t.log" "$server" 60
    echo "== CPU server, bundled model, cpus $cpus, $t threads; bench serve on cpus $client" | tee -a "$RESULTS/servecpu.txt"
    timeout 150 taskset -c "$client" "${BENCH[@]}" serve --target "127.0.0.1:$port" --concurrency 1,16 \
      --requests 256 --warmup 8 --prompt-len uniform:8:32 --output-len fixed:64 \
      --out "$RESULTS/servecpu-$t.json" 2>&1 | grep -iE "concurrency|output token throughput|failed requests" | tee -a "$RESULTS/servecpu.txt"
    kill -TERM "$server"; wait "$server"
  done
fi
if named serve8b; then
  # The gRPC server on the GPU, Llama-3-8B shape: F16 weights, then Q8_0 (quantized), 128/128 at
  # 1-256 streams, and 512/128 at 64 and 256.
  for wt in f16 q8_0; do
    timeout 400 "${BENCH[@]}" synth --shape llama-3-8b --weights "$wt" --out /tmp/synth-8b.gguf 2>&1 | tail -2
    "${KVANT[@]}" serve --device cuda --model /tmp/synth-8b.gguf --name synth --port 50152 \
      --metrics-port 0 --max-seqs 256 --max-batch-tokens 8192 --kv-cache-mb auto \
      > "$RESULTS/serve8b-$wt.log" 2>&1 &
    server=$!
    await_server "$RESULTS/serve8b-$wt.log" "$server" 300
    for spec in 1:128 16:128 64:128 256:128 64:512 256:512; do
      c=${spec%%:*}; p=${spec##*:}
      echo "== 8B $wt concurrency $c prompt $p output 128" | tee -a "$RESULTS/serve8b.txt"
      # a seed per level: no level's prompts in the prefix cache from an earlier one (serve8bfp8)
      timeout 150 "${BENCH[@]}" serve --target 127.0.0.1:50152 --model synth --concurrency "$c" \
        --seed "$c$p" --requests $((c * 2 > 32 ? c * 2 : 32)) --warmup "$c" --prompt-len fixed:"$p" \
        --output-len fixed:128 --out "$RESULTS/serve8b-$wt-$c-$p.json" 2>&1 | grep -v "^WARNING" | tail -40 | tee -a "$RESULTS/serve8b.txt"
    done
    kill -TERM "$server"; wait "$server"
    tail -3 "$RESULTS/serve8b-$wt.log"
    rm -f /tmp/synth-8b.gguf
  done
fi
if named serve8bfp8; then
  # Issue 15's aggregate throughput with FP8 weights (the far anchor's format): the 8B shape in
  # F16, quantized at load by the fp8 recipe, W8A8 products on cuBLASLt's FP8 path from the
  # measured row count (KVANT_CUDA_W8A8=on), through the gRPC server and `bench serve`.
  # The server's prefix cache keeps what an earlier level prefilled and `bench serve`'s prompts
  # are seeded, so a level after another on the same server with the same seed would be partly a
  # cache benchmark (session 19: its table's "Input tokens from prefix cache" line says how much):
  # every level below runs under a seed of its own (`--seed`; within one `bench serve` sweep each
  # level draws its own prompts anyway). SERVE_FRESH=1 also starts a server of its own for every
  # level (~25 s each once the model file is written): a fresh cache pool and allocator.
  # SERVE_KV=fp8|int8 serves with a quantized KV cache (half the bytes each decode step's attention
  # reads at 256 streams; the default is the server's, F16 on the GPU).
  timeout 300 "${BENCH[@]}" synth --shape llama-3-8b --weights f16 --out /tmp/synth-8b.gguf 2>&1 | tail -2
  start_fp8_server() {
    KVANT_CUDA_W8A8=on "${JAVA[@]}" -Xmx64g -cp "$CP" io.kvant.server.cli.Main serve --device cuda \
      --model /tmp/synth-8b.gguf --weights fp8 --name synth --port 50153 --metrics-port 0 \
      --max-seqs 256 --max-batch-tokens 8192 --kv-cache-mb auto ${SERVE_KV:+--kv "$SERVE_KV"} \
      >> "$RESULTS/serve8b-fp8.log" 2>&1 &
    server=$!
    await_server "$RESULTS/serve8b-fp8.log" "$server" 400
    echo "server up after ${waited} s" | tee -a "$RESULTS/serve8b-fp8.txt"
  }
  stop_fp8_server() {
    kill -TERM "$server"; wait "$server"
    # the next server's await_server looks for a fresh "listening" line
    mv "$RESULTS/serve8b-fp8.log" "$RESULTS/serve8b-fp8.log.$server"
    server=
  }
  server=
  level=0
  # prompt lengths are words (bench serve's --prompt-len): on the synthetic 8B model 128 words
  # came to 231 tokens and 512 to 920 (session 15), 70 to 126 and 284 to 511 (session 16)
  for spec in ${SERVE_SPECS:-64:70 256:70 16:128 64:128 256:128 64:512 256:512}; do
    c=${spec%%:*}; p=${spec##*:}
    [[ -n "$server" ]] || start_fp8_server
    echo "== 8B fp8 w8a8 concurrency $c prompt $p output 128" | tee -a "$RESULTS/serve8b-fp8.txt"
    level=$((level + 1))
    timeout 120 "${BENCH[@]}" serve --target 127.0.0.1:50153 --model synth --concurrency "$c" \
      --seed "$level" --requests $((c * 2 > 32 ? c * 2 : 32)) --warmup "$c" --prompt-len fixed:"$p" \
      --output-len fixed:128 --out "$RESULTS/serve8b-fp8-$c-$p.json" 2>&1 | grep -v "^WARNING" | tail -40 | tee -a "$RESULTS/serve8b-fp8.txt"
    [[ "${SERVE_FRESH:-0}" == 1 ]] && stop_fp8_server
  done
  [[ -n "$server" ]] && stop_fp8_server
  cat "$RESULTS"/serve8b-fp8.log.* > "$RESULTS/serve8b-fp8.log" && rm -f "$RESULTS"/serve8b-fp8.log.*
  tail -5 "$RESULTS/serve8b-fp8.log"
  rm -f /tmp/synth-8b.gguf
fi
if named units; then
  # mqp4, the one-row INT4 products on row pairs from unit copies (MgemvSplits.MQ_WIDE_UNITS,
  # session 35): its kernel test, the whole-pass agreement with MQ_WIDE and the policies' own
  # test, then 8B INT4 g128 decode at UNITS_BATCH rows (default 1) under UNITS_POLICIES (default
  # MQ_WIDE and MQ_WIDE_UNITS), same weights, one process per order (UNITS_ORDERS=one: the first
  # only).
  junit units --select-method 'io.kvant.cuda.model.QuantizedKernelsGpuTest#mqpMatchesTheReference()' \
    --select-class io.kvant.cuda.model.MqpUnitsGpuTest --select-class io.kvant.cuda.model.MgemvSplitsTest
  # UNITS_POLICIES: the policies compared, comma-separated (run as given, then reversed)
  policies=${UNITS_POLICIES:-mq-wide,mq-wide-units}
  reversed=$(tr ',' '\n' <<< "$policies" | tac | paste -sd, -)
  orders="$policies $reversed"
  [[ "${UNITS_ORDERS:-both}" == one ]] && orders=$policies
  for order in $orders; do
    timeout "${UNITS_TIMEOUT:-150}" "${CUDABENCH[@]}" decode --shape llama-3-8b --batch "${UNITS_BATCH:-1}" \
      --prompt 128 --steps 64 --splits "$order" --weights int4-g128 2>&1 | grep -v "^WARNING" | tee -a "$RESULTS/units.txt"
  done
fi
if named heads; then
  # attention_rows with a block per query head (DecodeFusion.PRODUCTS_AND_HEAD_ATTENTION, session
  # 40) against a block per kv head: 8B decode at HEADS_BATCH rows (default 1; at most 8 take the
  # per-head form on 132 SMs), prompt HEADS_PROMPT (128), 64 steps, INT4 g128 under mq-wide-units
  # and FP8 (HEADS_WEIGHTS), both fusions in one process, as given then reversed; HEADS_KV_ARGS
  # adds CudaBench options (e.g. "--kv int8").
  for weights in ${HEADS_WEIGHTS:-int4-g128 fp8-e4m3}; do
    splits=mq-wide
    [[ "$weights" == int4-g128 ]] && splits=mq-wide-units
    for order in products-and-warp-attention,products-and-head-attention products-and-head-attention,products-and-warp-attention; do
      echo "== $weights $order" | tee -a "$RESULTS/heads.txt"
      # shellcheck disable=SC2086 # HEADS_KV_ARGS is a word list
      timeout "${HEADS_TIMEOUT:-200}" "${CUDABENCH[@]}" decode --shape llama-3-8b --batch "${HEADS_BATCH:-1}" \
        --prompt "${HEADS_PROMPT:-128}" --steps 64 --splits "$splits" --weights "$weights" --fuse "$order" ${HEADS_KV_ARGS:-} 2>&1 |
        grep -v "^WARNING" | tee -a "$RESULTS/heads.txt"
    done
  done
fi
if named chain; then
  # tools/gpu/chain_bench.cu (sessions 32-33): a chain of one-row INT4 products of the 8B shape, a
  # launch per product (graph, with and without programmatic launch) against persistent kernels
  # with grid barriers; built here by the host's nvcc (again when the source is newer), arguments
  # from CHAIN_ARGS.
  CHAIN=/tmp/kvant-chain/chain_bench
  if [[ ! -x "$CHAIN" || "$ROOT/tools/gpu/chain_bench.cu" -nt "$CHAIN" ]]; then
    mkdir -p /tmp/kvant-chain
    "${NVCC:-/usr/local/cuda/bin/nvcc}" -O3 -arch=sm_90 -std=c++17 -o "$CHAIN" \
      "$ROOT/tools/gpu/chain_bench.cu" > "$RESULTS/chain-build.txt" 2>&1 || { cat "$RESULTS/chain-build.txt"; rc=1; }
  fi
  # The prebuilt binary (.device/chain, built on the development machine with the same flags) if
  # the host's nvcc could not build it.
  [[ ! -x "$CHAIN" && -x "$ROOT/.device/chain/chain_bench" ]] && CHAIN="$ROOT/.device/chain/chain_bench"
  [[ -x "$CHAIN" ]] && { timeout 240 "$CHAIN" ${CHAIN_ARGS:-} 2>&1 | tee "$RESULTS/chain.txt"; }
fi
exit $rc
