package io.kvant.engine.kv;

/**
 * A {@link KvStore} that passes everything to another store and records, for every key and value
 * written, {@code max |x_c|} per (layer, KV head, channel), and, when given the model's RoPE, the
 * key moments of the centered encodings: the mean of the keys in the frame before RoPE ({@code
 * R(-t) k_t}) and the second moment {@code E[q q^T]} of the queries read against each (layer, KV
 * head). The calibration pass behind {@link KvScales}. Run a model over calibration text on it,
 * then take {@link #scales()}. A position written twice counts twice (calibration writes each
 * position once).
 *
 * <p>Not thread-safe for writes (like the stores it wraps, per sequence); record one sequence at a
 * time. Reads may come from several threads (the forward pass splits heads over threads).
 */
public final class KvScaleRecorder implements KvStore {
  private final KvStore delegate;
  private final KvGeometry g;
  private final boolean rotated;
  private final float[] keyAmax;
  private final float[] valueAmax;
  private final float[] tmp;
  private final KeyRope keyRope;
  private final KeyRope.Tables rope;
  // Sums in double per (layer, head, channel) and (layer, head, i, j); counts per layer and per
  // (layer, head). Null without keyRope.
  private final double[] keySum;
  private final long[] keyCount;
  private final double[] querySum;
  private final long[] queryCount;

  /**
   * @param rotated record the maxima of the Walsh-Hadamard-rotated head vectors ({@link
   *     KvEncoding#rotates()}); the head size must then be a power of two
   */
  public KvScaleRecorder(KvStore delegate, int layers, boolean rotated) {
    this(delegate, layers, rotated, null);
  }

  /**
   * @param rotated as above
   * @param keyRope null to record the maxima only; else the RoPE the forward pass rotates keys by,
   *     to record the key moments too ({@link KvScales#hasKeyMoments()}); not with {@code rotated}
   */
  public KvScaleRecorder(KvStore delegate, int layers, boolean rotated, KeyRope keyRope) {
    this.delegate = delegate;
    this.g = new KvGeometry(layers, delegate.kvHeads(), delegate.headSize());
    if (rotated && Integer.bitCount(g.headSize()) != 1) {
      throw new IllegalArgumentException(
          "a rotated KV encoding needs a power-of-two head size, got " + g.headSize());
    }
    if (rotated && keyRope != null) {
      throw new IllegalArgumentException(
          "key moments are recorded of unrotated keys; record a rotated encoding's maxima apart");
    }
    this.rotated = rotated;
    this.keyAmax = new float[layers * g.kvDim()];
    this.valueAmax = new float[layers * g.kvDim()];
    this.tmp = new float[g.headSize()];
    this.keyRope = keyRope;
    this.rope = keyRope == null ? null : new KeyRope.Tables(keyRope, g.headSize());
    this.keySum = keyRope == null ? null : new double[layers * g.kvDim()];
    this.keyCount = keyRope == null ? null : new long[layers];
    this.querySum = keyRope == null ? null : new double[layers * g.kvDim() * g.headSize()];
    this.queryCount = keyRope == null ? null : new long[layers * g.kvHeads()];
  }

  /**
   * The statistics recorded so far: maxima, and the key moments when recording them (those of a
   * layer or head nothing was written to or read from are 0).
   */
  public synchronized KvScales scales() {
    if (keyRope == null) {
      return new KvScales(g, rotated, keyAmax, valueAmax);
    }
    float[] mean = new float[keySum.length];
    for (int i = 0; i < mean.length; i++) {
      long n = keyCount[i / g.kvDim()];
      mean[i] = n == 0 ? 0f : (float) (keySum[i] / n);
    }
    int hs = g.headSize();
    float[] moment = new float[querySum.length];
    for (int i = 0; i < moment.length; i++) {
      long n = queryCount[i / (hs * hs)];
      moment[i] = n == 0 ? 0f : (float) (querySum[i] / n);
    }
    return new KvScales(g, rotated, keyAmax, valueAmax, keyRope, mean, moment);
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
    if (rope != null) {
      int hs = g.headSize();
      for (int h = 0; h < g.kvHeads(); h++) {
        rope.rotate(k, kOff + h * hs, pos, true, tmp, 0);
        int base = (layer * g.kvHeads() + h) * hs;
        for (int c = 0; c < hs; c++) {
          keySum[base + c] += tmp[c];
        }
      }
      keyCount[layer]++;
    }
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
    if (querySum != null) {
      recordQuery(layer, kvHead, q, qOff);
    }
    delegate.keyScores(seq, layer, kvHead, q, qOff, len, scores);
  }

  private synchronized void recordQuery(int layer, int kvHead, float[] q, int qOff) {
    int hs = g.headSize();
    int head = layer * g.kvHeads() + kvHead;
    for (int i = 0; i < hs; i++) {
      double qi = q[qOff + i];
      int row = (head * hs + i) * hs;
      for (int j = 0; j < hs; j++) {
        querySum[row + j] += qi * q[qOff + j];
      }
    }
    queryCount[head]++;
  }

  @Override
  public void addWeightedValues(
      int seq, int layer, int kvHead, float[] weights, int len, float[] out, int outOff) {
    delegate.addWeightedValues(seq, layer, kvHead, weights, len, out, outOff);
  }
}
