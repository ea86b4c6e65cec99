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

  /** {@code value(code)}: the INT8 code as a float or the E4M3 code's value. */
  public static float value(KvCacheType type, byte code) {
    return KvKernels.value(type, code);
  }

  /** The factors {@code (float) 2^(k/32)} of {@link KvEncoding.Scaling#TOKEN_MSE}'s candidates. */
  public static float[] mseFactors() {
    return MseScale.FACTORS.clone();
  }
}
