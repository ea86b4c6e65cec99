package io.kvant.engine.tokenizer;

import java.util.PriorityQueue;

/**
 * The merge loop shared by both BPE flavours: a sequence of symbols (spans of a text, each with an
 * id) is repeatedly reduced by merging the adjacent pair with the best priority, ties going to the
 * leftmost pair.
 *
 * <p>Why a heap and a linked list: rescanning all pairs after each merge (as llama2.c does) is
 * quadratic, which matters because SentencePiece does not split text on whitespace first, so a
 * whole prompt is one merge problem. Here each merge costs O(log n): the pair candidates live in a
 * priority queue, symbols in a doubly linked list, and a candidate whose symbols have changed since
 * it was queued is recognised as stale and dropped when popped.
 *
 * <p>One instance merges one sequence; not reusable, not thread-safe.
 */
final class BpeMerger {

  /** Result of {@link Rule#merge} when the pair cannot be merged. */
  static final long NO_MERGE = Long.MAX_VALUE;

  /** Decides whether two adjacent symbols merge, and with which priority. */
  @FunctionalInterface
  interface Rule {
    /**
     * Looks up the merge of the adjacent symbols {@code text[start, split)} (id {@code leftId}) and
     * {@code text[split, end)} (id {@code rightId}).
     *
     * @return {@link #candidate(int, int)} of the merge, or {@link #NO_MERGE}
     */
    long merge(int leftId, int rightId, int start, int split, int end);
  }

  /** Packs a merge's priority (smaller merges first) and the id of the merged symbol. */
  static long candidate(int priority, int mergedId) {
    return ((long) priority << 32) | (mergedId & 0xFFFFFFFFL);
  }

  /**
   * Maps a score where higher is better to a priority where smaller is better, preserving order
   * exactly (no rounding, unlike negating and casting).
   */
  static int priorityOfScore(float score) {
    int bits = Float.floatToIntBits(score);
    int ordered = bits >= 0 ? bits : bits ^ 0x7FFFFFFF; // ints now sort like the floats
    return ~ordered; // reverse: higher score, smaller priority
  }

  private record Candidate(int priority, int left, int right, int end, int mergedId) {}

  private final int[] start;
  private final int[] end;
  private final int[] id;
  private final int[] prev;
  private final int[] next;
  private final boolean[] frozen;
  private final boolean[] dead;
  private int count;

  /**
   * @param capacity the most symbols that will be {@link #add added}
   */
  BpeMerger(int capacity) {
    start = new int[capacity];
    end = new int[capacity];
    id = new int[capacity];
    prev = new int[capacity];
    next = new int[capacity];
    frozen = new boolean[capacity];
    dead = new boolean[capacity];
  }

  /**
   * Appends the symbol {@code text[from, to)} with the given id. A frozen symbol never merges with
   * its neighbours.
   */
  void add(int from, int to, int symbolId, boolean isFrozen) {
    int i = count++;
    start[i] = from;
    end[i] = to;
    id[i] = symbolId;
    prev[i] = i - 1;
    next[i] = -1;
    frozen[i] = isFrozen;
    if (i > 0) {
      next[i - 1] = i;
    }
  }

  /** Merges until no adjacent pair has a merge. Call once, after all {@link #add}s. */
  void mergeAll(Rule rule) {
    PriorityQueue<Candidate> queue =
        new PriorityQueue<>(
            Math.max(1, count),
            (a, b) ->
                a.priority != b.priority
                    ? Integer.compare(a.priority, b.priority)
                    : Integer.compare(a.left, b.left));
    for (int i = 0; i + 1 < count; i++) {
      offer(queue, rule, i, i + 1);
    }
    while (!queue.isEmpty()) {
      Candidate c = queue.poll();
      // Stale unless both symbols are still alive, still adjacent, and unchanged. The left start
      // and
      // the split point never move while both live, so the right end identifies the pair.
      if (dead[c.left] || dead[c.right] || next[c.left] != c.right || end[c.right] != c.end) {
        continue;
      }
      int l = c.left;
      int r = c.right;
      end[l] = end[r];
      id[l] = c.mergedId;
      dead[r] = true;
      next[l] = next[r];
      if (next[r] >= 0) {
        prev[next[r]] = l;
      }
      if (prev[l] >= 0) {
        offer(queue, rule, prev[l], l);
      }
      if (next[l] >= 0) {
        offer(queue, rule, l, next[l]);
      }
    }
  }

  private void offer(PriorityQueue<Candidate> queue, Rule rule, int l, int r) {
    if (frozen[l] || frozen[r]) {
      return;
    }
    long merge = rule.merge(id[l], id[r], start[l], start[r], end[r]);
    if (merge != NO_MERGE) {
      queue.add(new Candidate((int) (merge >> 32), l, r, end[r], (int) merge));
    }
  }

  /** Index of the first remaining symbol, or -1 if there are none; follow with {@link #next}. */
  int first() {
    return count == 0 ? -1 : 0; // symbol 0 can only absorb others, never be absorbed
  }

  int next(int symbol) {
    return next[symbol];
  }

  int start(int symbol) {
    return start[symbol];
  }

  int end(int symbol) {
    return end[symbol];
  }

  int id(int symbol) {
    return id[symbol];
  }
}
