package io.kvant.engine.kv;

import java.lang.foreign.MemorySegment;
import java.util.ArrayDeque;
import java.util.Arrays;

/**
 * A simple F32 KV store: each sequence slot owns a contiguous {@code [layer][position][kvDim]}
 * array for keys and one for values, sized for {@code maxPositions} tokens.
 *
 * <p>This is the reference store: the forward pass's correctness is tested against it, and the
 * paged, quantized cache must give the same attention results (for F32 storage up to the summation
 * order of the scores; values go through the same kernel, {@link KvKernels#weightedSumF32}). Slots
 * are taken with {@link #acquire()} and given back with {@link #release(int)}; memory for all slots
 * is allocated up front so a running store never allocates.
 */
public final class ContiguousKvStore implements KvStore {
  private final int layers;
  private final int kvHeads;
  private final int headSize;
  private final int kvDim;
  private final int maxPositions;
  private final float[][] keys;
  private final float[][] values;
  private final ArrayDeque<Integer> freeSlots = new ArrayDeque<>();

  /**
   * @param slots how many sequences can be held at once
   * @param maxPositions tokens per sequence
   */
  public ContiguousKvStore(int layers, int kvHeads, int headSize, int maxPositions, int slots) {
    if (layers <= 0 || kvHeads <= 0 || headSize <= 0 || maxPositions <= 0 || slots <= 0) {
      throw new IllegalArgumentException("all sizes must be positive");
    }
    this.layers = layers;
    this.kvHeads = kvHeads;
    this.headSize = headSize;
    this.kvDim = kvHeads * headSize;
    this.maxPositions = maxPositions;
    long perSlot = (long) layers * maxPositions * kvDim;
    if (perSlot > Integer.MAX_VALUE - 8) {
      throw new IllegalArgumentException("a slot of " + perSlot + " floats is too large");
    }
    this.keys = new float[slots][(int) perSlot];
    this.values = new float[slots][(int) perSlot];
    for (int s = 0; s < slots; s++) {
      freeSlots.add(s);
    }
  }

  /** Takes a free slot; its contents are unspecified until written. */
  public synchronized int acquire() {
    Integer slot = freeSlots.poll();
    if (slot == null) {
      throw new IllegalStateException("no free KV slot (all " + keys.length + " in use)");
    }
    return slot;
  }

  /** Gives a slot back. */
  public synchronized void release(int slot) {
    if (freeSlots.contains(slot)) {
      throw new IllegalStateException("slot " + slot + " released twice");
    }
    Arrays.fill(keys[slot], 0f);
    Arrays.fill(values[slot], 0f);
    freeSlots.add(slot);
  }

  /** Slots not in use. */
  public synchronized int freeSlots() {
    return freeSlots.size();
  }

  public int maxPositions() {
    return maxPositions;
  }

  @Override
  public int kvHeads() {
    return kvHeads;
  }

  @Override
  public int headSize() {
    return headSize;
  }

  private int base(int layer, int pos) {
    if (layer < 0 || layer >= layers) {
      throw new IndexOutOfBoundsException("layer " + layer);
    }
    if (pos < 0 || pos >= maxPositions) {
      throw new IndexOutOfBoundsException("position " + pos + " outside [0, " + maxPositions + ")");
    }
    return (layer * maxPositions + pos) * kvDim;
  }

  @Override
  public void write(int seq, int layer, int pos, float[] k, int kOff, float[] v, int vOff) {
    int b = base(layer, pos);
    System.arraycopy(k, kOff, keys[seq], b, kvDim);
    System.arraycopy(v, vOff, values[seq], b, kvDim);
  }

  @Override
  public void keyScores(
      int seq, int layer, int kvHead, float[] q, int qOff, int len, float[] scores) {
    float[] k = keys[seq];
    int b = base(layer, 0) + kvHead * headSize;
    for (int t = 0; t < len; t++) {
      scores[t] = KvKernels.dotF32(q, qOff, k, b + t * kvDim, headSize);
    }
  }

  @Override
  public void addWeightedValues(
      int seq, int layer, int kvHead, float[] weights, int len, float[] out, int outOff) {
    float[] v = values[seq];
    int b = base(layer, 0) + kvHead * headSize;
    KvKernels.weightedSumF32(
        weights, 0, MemorySegment.ofArray(v), b, kvDim, len, headSize, out, outOff);
  }
}
