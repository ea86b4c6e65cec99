package io.kvant.engine.tensor;

import java.lang.foreign.MemorySegment;

/**
 * {@link DType#F16} tensor.
 *
 * <p>Design note: a tile of rows is decoded in two passes: a bulk copy of its halves from the
 * segment into a {@code short[]} scratch, then a plain loop of {@link Float#float16ToFloat} over
 * that array, which C2 on JDK 25 auto-vectorises (on x86 an F16C conversion per vector of halves).
 * The loop reads a heap array on purpose: the same loop reading the (mapped) segment directly was
 * the fastest form in a benchmark but bimodal in the server, where in 9 of 12 starts it stayed
 * scalar (single-stream 221-243 tok/s against 818-914, the decode at ~80% of the samples); most
 * likely because segments of several kinds pass the JDK's shared access code there and the compiled
 * loop depends on what was seen first (not proven). Until session 13 the decode was an explicit
 * Vector API conversion with integer lane operations (widen, shift, rebias by a multiply, patch
 * infinities and NaNs, or the sign back: about eight operations a vector, as the Vector API has no
 * half-float conversion); perf/RESULTS.md ("F16 decode", session 13) has the measurements.
 * Signalling NaNs may come back quieted (the hardware conversion); any NaN weight gives NaN outputs
 * either way.
 */
public final class F16Tensor extends BaseTensor implements Tensor {
  F16Tensor(int rows, int cols, MemorySegment data) {
    super(DType.F16, rows, cols, data);
  }

  @Override
  public DType dtype() {
    return DType.F16;
  }

  @Override
  float getUnchecked(int row, int col) {
    return f16(data, ((long) row * cols + col) * 2);
  }

  @Override
  short[] newRawScratch() {
    return new short[TILE * cols];
  }

  @Override
  void decodeRows(int row, int n, float[] dst, int off) {
    decodeRows(row, n, dst, off, new short[n * cols]);
  }

  @Override
  void decodeRows(int row, int n, float[] dst, int off, short[] raw) {
    int total = n * cols;
    MemorySegment.copy(data, SHORT_LE, (long) row * cols * 2, raw, 0, total);
    for (int i = 0; i < total; i++) {
      dst[off + i] = Float.float16ToFloat(raw[i]);
    }
  }
}
