package io.kvant.engine.kv;

import java.lang.foreign.MemorySegment;

/**
 * The CPU's KV encoders, one head vector at a time, for another backend's tests: a device port of
 * an encoding ({@link KvEncoding}) must write the codes and scales these write, bit for bit. They
 * are the very loops {@link PagedKvStore} runs, over heap arrays.
 */
public final class KvEncoders {
  private KvEncoders() {}

  /**
   * {@link KvEncoding.Scaling#TOKEN} ({@link KvEncoding#PER_TOKEN}'s encoder): codes of {@code
   * x[off .. off+n)} into {@code codes[cOff ..)}; returns the scale.
   */
  public static float perToken(
      KvCacheType type, float[] x, int off, int n, byte[] codes, int cOff) {
    return KvKernels.quantize(type, x, off, n, MemorySegment.ofArray(codes), cOff);
  }

  /** {@link KvEncoding.Scaling#TOKEN_MSE}: as {@link #perToken}, the scale of least error. */
  public static float tokenMse(
      KvCacheType type, float[] x, int off, int n, byte[] codes, int cOff) {
    return MseScale.quantize(type, x, off, n, MemorySegment.ofArray(codes), cOff);
  }

  /**
   * {@link KvEncoding.Scaling#BLOCK_CHANNEL}: writes {@code x[off .. off+n)} into slot {@code slot}
   * of a block whose slot {@code u} has its codes at {@code codes[base + u*n ..)} and whose channel
   * scales are {@code scales[sOff .. sOff+n)} (re-coding earlier slots where a channel grows).
   */
  public static void blockChannel(
      KvCacheType type,
      float[] x,
      int off,
      int n,
      float[] scales,
      int sOff,
      byte[] codes,
      int base,
      int slot) {
    ChannelCodes.appendBlockChannel(
        type, x, off, n, scales, sOff, MemorySegment.ofArray(codes), base, slot);
  }

  /**
   * The centered encodings' keys ({@link KvEncoding#CENTERED_MSE}, {@link
   * KvEncoding#CENTERED_QMSE}) with one model's calibrated statistics, as {@link PagedKvStore}
   * writes them: {@code y = k - R(pos) m} ({@link KeyRope}'s F32 tables), then {@link
   * KvEncoding.Scaling#TOKEN_MSE}'s candidates chosen by squared error or, weighing, by {@code d^T
   * W d}.
   */
  public static final class CenteredKeys {
    private final KvGeometry g;
    private final KeyRope.Tables rope;
    private final float[] mean;
    private final float[] moment;

    /**
     * @param scales statistics with key moments ({@link KvScales#hasKeyMoments()})
     * @param encoding a centered encoding
     * @throws IllegalArgumentException if either is not
     */
    public CenteredKeys(KvScales scales, KvEncoding encoding) {
      if (!encoding.centersKeys() || !scales.hasKeyMoments()) {
        throw new IllegalArgumentException(
            encoding.optionName() + " with " + scales + ": not centered keys with key moments");
      }
      this.g = scales.geometry();
      this.rope = new KeyRope.Tables(scales.keyRope(), g.headSize());
      this.mean = scales.keyMean();
      this.moment = encoding.weighsKeys() ? scales.queryMoment() : null;
    }

    /**
     * Codes of the key {@code k[off .. off+headSize)} of ({@code layer}, {@code head}) at position
     * {@code pos} into {@code codes[cOff ..)}; returns the scale.
     */
    public float encode(
        KvCacheType type,
        int layer,
        int head,
        int pos,
        float[] k,
        int off,
        byte[] codes,
        int cOff) {
      int hs = g.headSize();
      int ch = (layer * g.kvHeads() + head) * hs;
      float[] y = new float[hs];
      rope.rotate(mean, ch, pos, false, y, 0);
      for (int c = 0; c < hs; c++) {
        y[c] = k[off + c] - y[c];
      }
      MemorySegment dst = MemorySegment.ofArray(codes);
      return moment != null
          ? MseScale.quantizeWeighted(type, y, 0, hs, dst, cOff, moment, ch * hs)
          : MseScale.quantize(type, y, 0, hs, dst, cOff);
    }

    /** {@code out[oOff ..] = R(pos) m} for ({@code layer}, {@code head}): what a read adds back. */
    public void rotatedMean(int layer, int head, int pos, float[] out, int oOff) {
      rope.rotate(mean, (layer * g.kvHeads() + head) * g.headSize(), pos, false, out, oOff);
    }
  }

  /** {@code value(code)}: the INT8 code as a float or the E4M3 code's value. */
  public static float value(KvCacheType type, byte code) {
    return KvKernels.value(type, code);
  }

  /** The factors {@code (float) 2^(k/32)} of {@link KvEncoding.Scaling#TOKEN_MSE}'s candidates. */
  public static float[] mseFactors() {
    return MseScale.FACTORS.clone();
  }
}
