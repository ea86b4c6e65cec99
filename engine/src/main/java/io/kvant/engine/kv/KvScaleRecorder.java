package io.kvant.engine.kv;

/**
 * A {@link KvStore} that passes everything to another store and records, for every key and value
 * written, {@code max |x_c|} per (layer, KV head, channel): the calibration pass behind {@link
 * KvScales}. Run a model over calibration text on it, then take {@link #scales()}.
 *
 * <p>Not thread-safe for writes (like the stores it wraps, per sequence); record one sequence at a
 * time.
 */
public final class KvScaleRecorder implements KvStore {
  private final KvStore delegate;
  private final KvGeometry g;
  private final boolean rotated;
  private final float[] keyAmax;
  private final float[] valueAmax;
  private final float[] tmp;

  /**
   * @param rotated record the maxima of the Walsh-Hadamard-rotated head vectors ({@link
   *     KvEncoding#rotates()}); the head size must then be a power of two
   */
  public KvScaleRecorder(KvStore delegate, int layers, boolean rotated) {
    this.delegate = delegate;
    this.g = new KvGeometry(layers, delegate.kvHeads(), delegate.headSize());
    if (rotated && Integer.bitCount(g.headSize()) != 1) {
      throw new IllegalArgumentException(
          "a rotated KV encoding needs a power-of-two head size, got " + g.headSize());
    }
    this.rotated = rotated;
    this.keyAmax = new float[layers * g.kvDim()];
    this.valueAmax = new float[layers * g.kvDim()];
    this.tmp = new float[g.headSize()];
  }

  /** The maxima recorded so far. */
  public KvScales scales() {
    return new KvScales(g, rotated, keyAmax, valueAmax);
  }

  @Override
  public int kvHeads() {
    return g.kvHeads();
  }

  @Override
  public int headSize() {
    return g.headSize();
  }

  @Override
  public void write(int seq, int layer, int pos, float[] k, int kOff, float[] v, int vOff) {
    record(keyAmax, layer, k, kOff);
    record(valueAmax, layer, v, vOff);
    delegate.write(seq, layer, pos, k, kOff, v, vOff);
  }

  private void record(float[] amax, int layer, float[] x, int off) {
    int hs = g.headSize();
    for (int h = 0; h < g.kvHeads(); h++) {
      System.arraycopy(x, off + h * hs, tmp, 0, hs);
      if (rotated) {
        KvEncoding.rotate(tmp, 0, hs);
      }
      int base = (layer * g.kvHeads() + h) * hs;
      for (int c = 0; c < hs; c++) {
        amax[base + c] = Math.max(amax[base + c], Math.abs(tmp[c]));
      }
    }
  }

  @Override
  public void keyScores(
      int seq, int layer, int kvHead, float[] q, int qOff, int len, float[] scores) {
    delegate.keyScores(seq, layer, kvHead, q, qOff, len, scores);
  }

  @Override
  public void addWeightedValues(
      int seq, int layer, int kvHead, float[] weights, int len, float[] out, int outOff) {
    delegate.addWeightedValues(seq, layer, kvHead, weights, len, out, outOff);
  }
}
