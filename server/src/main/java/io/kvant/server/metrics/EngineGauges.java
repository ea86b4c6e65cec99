package io.kvant.server.metrics;

/**
 * A snapshot of engine state read by metric gauges.
 *
 * @param queued requests waiting for admission
 * @param running requests in the running batch
 * @param kvUsage fraction of KV blocks in use, [0, 1]
 * @param prefixHitRatio prefix-cache hits over lookups, [0, 1]
 * @param model model name
 * @param servingVersion version new requests get
 * @param preemptions requests preempted since start (cumulative)
 * @param steps engine steps run since start (cumulative)
 */
public record EngineGauges(
    long queued,
    long running,
    double kvUsage,
    double prefixHitRatio,
    String model,
    String servingVersion,
    long preemptions,
    long steps) {}
