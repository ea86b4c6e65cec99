package io.kvant.perf.sim;

/**
 * Time of one engine step in the simulator, roofline style: a step streams every weight once (the
 * same for one token or a full batch, the reason batching pays), reads the KV of every scheduled
 * token's context, and does {@code 2 * parameters} FLOPs per scheduled token. The step takes the
 * larger of the memory time and the compute time, plus a fixed overhead.
 *
 * @param weightBytes bytes of weights streamed per step
 * @param kvBytesPerToken bytes of K and V per cached token (all layers)
 * @param parameters weights in the model (FLOPs per token = 2 * parameters)
 * @param bandwidthBytesPerS memory bandwidth
 * @param flopsPerS compute throughput
 * @param overheadS fixed cost per step (scheduling, sampling, launch)
 */
public record CostModel(
    double weightBytes,
    double kvBytesPerToken,
    double parameters,
    double bandwidthBytesPerS,
    double flopsPerS,
    double overheadS) {

  public CostModel {
    if (!(bandwidthBytesPerS > 0) || !(flopsPerS > 0) || weightBytes < 0 || overheadS < 0) {
      throw new IllegalArgumentException("cost model: bandwidth and flops must be positive");
    }
  }

  /**
   * Seconds of a step that computes {@code tokens} tokens whose attention reads {@code kvTokens}
   * cached tokens in total.
   */
  public double stepSeconds(int tokens, long kvTokens) {
    double memory = (weightBytes + kvTokens * kvBytesPerToken) / bandwidthBytesPerS;
    double compute = 2.0 * parameters * tokens / flopsPerS;
    return overheadS + Math.max(memory, compute);
  }
}
