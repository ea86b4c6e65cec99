package io.kvant.engine.sched;

import java.util.List;

/**
 * What one step computes: for each scheduled request, the token range {@code [start, start +
 * count)} whose KV it writes, and whether the step ends at its last token (so its next token is
 * sampled). Immutable; built by {@link Scheduler#schedule()}.
 */
record SchedulerOutput(List<Chunk> chunks) {
  record Chunk(Sequence seq, int start, int count, boolean sample) {}

  SchedulerOutput {
    chunks = List.copyOf(chunks);
  }

  int tokens() {
    int n = 0;
    for (Chunk c : chunks) {
      n += c.count();
    }
    return n;
  }
}
