package io.kvant.engine.sched;

/**
 * A snapshot of the engine loop for metrics, taken after each step.
 *
 * @param waiting requests queued (including preempted ones)
 * @param running requests holding KV
 * @param kvUsage fraction of KV blocks held, [0, 1]
 * @param prefixHitRatio prompt tokens served from the prefix cache over those looked up
 * @param preemptions requests preempted so far
 * @param steps forward steps run so far
 * @param finished requests finished so far (any reason)
 */
public record SchedulerStats(
    int waiting,
    int running,
    double kvUsage,
    double prefixHitRatio,
    long preemptions,
    long steps,
    long finished) {}
