package io.kvant.engine.kv;

/**
 * Where the forward pass keeps and reads each sequence's attention keys and values.
 *
 * <p>Design note: the attention inner loops (q·K over past positions, the weighted sum of V) live
 * behind this interface rather than in the forward pass, so that a store can keep its data in any
 * layout and precision (contiguous F32, paged INT8 blocks, FP8) and read it directly without first
 * materialising F32 copies. The forward pass only ever sees float vectors.
 *
 * <p>Contract: a sequence is named by an int handle {@code seq} that the store's owner assigned (a
 * slot for a contiguous store, a block-table id for a paged one). Positions of a sequence are
 * written in increasing order starting at 0 (a rewrite of an already written position replaces it).
 * {@code kvDim = kvHeads * headSize} floats per token per layer for K and for V. Reads cover
 * positions {@code [0, len)}, all of which must have been written. Implementations need not be
 * thread-safe for writes to the same sequence; concurrent reads and writes of different sequences
 * must be safe.
 */
public interface KvStore {
  /** Number of KV heads per layer. */
  int kvHeads();

  /** Floats per head. */
  int headSize();

  /** Stores one token's key and value vectors ({@code kvDim} floats each) at {@code pos}. */
  void write(int seq, int layer, int pos, float[] k, int kOff, float[] v, int vOff);

  /**
   * For one KV head: {@code scores[t] = dot(q[qOff .. qOff+headSize), K[t, kvHead])} for every
   * {@code t} in {@code [0, len)}.
   */
  void keyScores(int seq, int layer, int kvHead, float[] q, int qOff, int len, float[] scores);

  /**
   * For one KV head: {@code out[outOff + i] += sum over t in [0, len) of weights[t] * V[t,
   * kvHead][i]} for every {@code i} in {@code [0, headSize)}.
   */
  void addWeightedValues(
      int seq, int layer, int kvHead, float[] weights, int len, float[] out, int outOff);
}
