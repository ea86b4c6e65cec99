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
 */
public record EngineGauges(
    long queued,
    long running,
    double kvUsage,
    double prefixHitRatio,
    String model,
    String servingVersion) {}
