package io.kvant.cuda.model;

import io.kvant.cuda.device.CudaKernels;

/**
 * How the decode kernels ({@code mgemv}, {@code mgemv_fused}) read one device matrix: its kind and
 * layout, and where its codes, scales and zero points are. Two operands of the same layout can
 * share a fused launch.
 */
record MgOperand(
    CudaKernels.MgKind kind,
    long ldw,
    int groupSize,
    int groupsPerRow,
    long w,
    long scales,
    long zeros,
    int rows,
    int cols,
    boolean tiled) {

  /**
   * The operand when {@code n} rows of {@code t} take the decode kernels, else null: dense F16/BF16
   * for the rows {@link CudaTransformer#denseMgemv} allows, quantized layouts that {@code mgemv}
   * reads for up to {@link CudaKernels#MGEMV_ROWS} rows (one launch), tiled 4-bit layouts ({@code
   * mq4}, {@code mq8}) for up to {@code tiledRows} ({@link MgemvSplits#tiledRows}, at most {@link
   * CudaKernels#MQ_ROWS}).
   */
  static MgOperand of(DeviceTensor t, int n, int tiledRows) {
    boolean tiled = t.quantized() && t.quant().tiled();
    if (n < 1 || n > (tiled ? Math.min(tiledRows, CudaKernels.MQ_ROWS) : CudaKernels.MGEMV_ROWS)) {
      return null;
    }
    if (!t.quantized()) {
      if (!CudaTransformer.denseMgemv(t, n)) {
        return null;
      }
      CudaKernels.MgKind kind =
          t.dtype() == CudaKernels.DT_BF16 ? CudaKernels.MgKind.BF16 : CudaKernels.MgKind.F16;
      return new MgOperand(kind, 2L * t.cols(), 0, 0, t.ptr(), 0, 0, t.rows(), t.cols(), false);
    }
    if (!tiled && !QuantizedProducts.mgemvReads(t)) {
      return null;
    }
    DeviceTensor.DeviceQuant q = t.quant();
    CudaKernels.MgKind kind =
        q.bits() == 8 ? CudaKernels.MgKind.ofCodes8(q.format()) : CudaKernels.MgKind.I4;
    return new MgOperand(
        kind,
        q.ldw(),
        q.groupSize(),
        q.groupsPerRow(),
        t.ptr(),
        q.scales().ptr(),
        q.zerosPtr(),
        t.rows(),
        t.cols(),
        tiled);
  }

  /** Whether {@code o} is read the same way (one fused launch can take both). */
  boolean sameLayout(MgOperand o) {
    return o != null
        && kind == o.kind
        && ldw == o.ldw
        && groupSize == o.groupSize
        && groupsPerRow == o.groupsPerRow
        && cols == o.cols
        && tiled == o.tiled
        && (zeros == 0) == (o.zeros == 0);
  }

  /** The group shift of the tiled kernels ({@link DeviceTensor.DeviceQuant#groupShift()}). */
  int groupShift() {
    return DeviceTensor.DeviceQuant.groupShift(groupSize, groupsPerRow);
  }

  /** The codes of a tiled operand ({@code mq4} / {@code mq8}). */
  CudaKernels.MqCodes codes() {
    return CudaKernels.MqCodes.of(kind);
  }

  /** This matrix as one of a fused launch, writing {@code y}. */
  CudaKernels.MgMatrix into(long y) {
    return new CudaKernels.MgMatrix(w, scales, zeros, y, rows);
  }
}
