package io.kvant.perf;

/** The {@code --help} text of each command. */
final class Help {
  private Help() {}

  static String of(String command) {
    return switch (command) {
      case "serve" -> SERVE;
      case "swap" -> SERVE + SWAP;
      case "chart" ->
          """
          ./kvant bench chart --in RESULT.json [--out-dir DIR]
            writes latency-cdf.png, and sweep.png (throughput and p99 vs concurrency) for a sweep,
            ttft-over-time.png (swap events marked) when the result has per-request records
          """;
      case "synth" ->
          """
          ./kvant bench synth --shape NAME --weights TYPE --out FILE.gguf [--seed 42] [--threads N]
            NAME: smollm2-135m, llama-3.2-1b, llama-3-8b, tiny; TYPE: F32, F16, Q8_0, Q4_0, Q5_0, Q5_1, Q2_K..Q6_K
          """;
      case "bandwidth" ->
          """
          ./kvant bench bandwidth [--mib 256] [--trials 5] [--threads N]
            copy/scale/add/triad (STREAM) and read, 1 thread and N threads, best of trials
          ./kvant bench bandwidth --device cuda|auto [--mib 2048] [--trials 20]
            the GPU's device-to-device copy (read + write counted), median of trials: the figure
            GPU decode is stated as a share of; auto without a GPU measures the CPU
          """;
      case "decode" ->
          """
          ./kvant bench decode --model FILE.gguf [--tokens 64] [--warmup 8] [--threads T]
                               (CPU: the warm-up decodes a sequence of its own, then the timed
                                steps start again from BOS, at positions 1..tokens)
                               [--bandwidth-gbs X]   (default: measured with the read kernel)
                               [--kernels int|float] (int, the default as in serve: integer
                                kernels for Q8_0/Q4_0/I8/I4; float: the float reference kernels)
                               [--kv-store paged|contiguous] (CPU: paged, the default, is the
                                store serve decodes into, F32 blocks of 16 tokens; contiguous:
                                the reference store, one row-major key per token)
                               [--device cpu|cuda|auto] (cpu, the default: this process's
                                forward pass; cuda: the CUDA backend's forward pass over paged KV
                                blocks on the GPU, as serve runs it; auto: cuda where a GPU
                                opens, else the CPU backend, saying why)
          """;
      case "batch" ->
          """
          ./kvant bench batch --model FILE.gguf [--concurrency 1,4,16,64] [--tokens 32]
                              [--warmup 8] [--threads T] [--kernels int|float]
                              [--kv-store paged|contiguous] [--device cpu|cuda|auto] (as for
                              decode)
            N sequences decoded together (one token each per forward step, N sequences in one
            KV store); prints aggregate tokens/s and the ratio to concurrency 1
          """;
      case "prefill" ->
          """
          ./kvant bench prefill --model FILE.gguf [--prompt 512] [--chunk 256] [--repeats 3]
                                [--warmup 2] [--threads T] [--kernels int|float] (as for decode)
            one sequence's prompt (random tokens, fixed seed) run in chunks of --chunk tokens
            into a fresh KV slot per repeat; prints prompt tokens/s over the timed repeats
          """;
      case "sim" -> SimCommand.HELP;
      default -> BenchMain.USAGE;
    };
  }

  static final String SERVE =
      """
      ./kvant bench serve --target HOST:PORT [options]
        --mode closed|open           closed: --concurrency users back to back (default)
                                     open: Poisson arrivals at --rate req/s (inf: all at once)
        --concurrency N[,N...]       users (closed) or in-flight cap (open); a list is a sweep
                                     (each level its own synthetic prompts, so a prefix cache
                                     does not carry one level's prompts into the next)
        --rate R  --burstiness B     open loop; B=1 Poisson, <1 burstier, >1 smoother (gamma)
        --requests N  --duration D   bounds (either or both; default 100 requests)
        --warmup N                   requests run first and excluded (default 0)
        --prompt-len SPEC            fixed:N | uniform:A:B (words), default fixed:32
        --output-len SPEC            fixed:N | uniform:A:B (max_tokens), default fixed:64
        --prompts FILE               one prompt per line (overrides --prompt-len)
        --slo ttft=500ms,tpot=50ms,e2e=10s   goodput counts requests meeting all of them
        --temperature T  --top-p P  --top-k K  --model NAME  --seed S  --deadline 60s
        --out FILE.json              result file (default bench-result.json)
        --records                    keep per-request records in the JSON (for TTFT over time)
        --charts DIR                 also write PNG charts there
      """;

  static final String SWAP =
      """
      swap options: --admin-token T (or env KVANT_ADMIN_TOKEN), --swap-version V[,V...] or
        --swap-path P[,P...] (alternated), --swap-every 10s, --swap-policy drain|immediate|pause,
        --swap-window 2s (latency 'during' = this long after a swap's start)
      """;
}
