package io.kvant.cuda.model;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED;

import io.kvant.cuda.device.CudaKernels;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Fp8Codes;
import io.kvant.engine.tensor.Fp8Tensor;
import io.kvant.engine.tensor.Int4Tensor;
import io.kvant.engine.tensor.Int8Tensor;
import io.kvant.engine.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A quantized weight matrix in the layout the CUDA kernels read ({@code qgemv8}/{@code qgemv4} and
 * {@code dequant8}/{@code dequant4} in {@code kvant.cu}), made from a host {@link Tensor} at
 * upload.
 *
 * <p>Two families: 8-bit codes ({@code bits == 8}: INT8 per-channel, GGUF Q8_0 as INT8 in groups of
 * 32, FP8 E4M3/E5M2 with per-row scales) and 4-bit codes ({@code bits == 4}: INT4 group-wise in
 * {@link Int4Tensor}'s nibble order, GGUF Q4_0 as symmetric INT4 in groups of 32, whose nibble
 * order is the same). Each row starts at a multiple of {@link #ldw()} bytes, a multiple of 16, so a
 * lane of the kernel reads 16 code bytes with one aligned load. Scales are F32 {@code
 * [rows][groupsPerRow]}; zero points (4-bit, asymmetric only) are bytes of the same shape.
 *
 * <p>Design note: the artifact formats stay as they are; repacking happens once per upload, and is
 * a plain copy when the host rows are already 16-byte multiples (real model widths). GGUF blocks
 * interleave an fp16 scale with their codes (34 or 18 bytes per 32 values), which defeats aligned
 * wide loads, so their codes and scales are split apart here. Every value the kernels decode is the
 * one the CPU decoder computes ({@code scale * code} as one float multiplication): {@link
 * #value(int, int)} is that decoding, written from this layout, and the tests hold it equal to
 * {@link Tensor#get} bit for bit.
 *
 * @param bits 8 or 4
 * @param format for 8-bit codes, {@link CudaKernels#QF_INT8}, {@code QF_E4M3} or {@code QF_E5M2}
 * @param codes {@code rows * ldw} bytes
 * @param zeros null when symmetric (or 8-bit)
 */
public record QuantizedLayout(
    int bits,
    int format,
    int rows,
    int cols,
    int ldw,
    int groupSize,
    int groupsPerRow,
    MemorySegment codes,
    float[] scales,
    byte[] zeros) {

  /** Whether the CUDA backend reads {@code type} through this layout. */
  public static boolean handles(DType type) {
    return switch (type) {
      case I8, I4, F8_E4M3, F8_E5M2, Q8_0, Q4_0 -> true;
      default -> false;
    };
  }

  /**
   * The layout of {@code t}.
   *
   * @throws UnsupportedOperationException naming the type when it is not {@link #handles handled}
   */
  public static QuantizedLayout of(Tensor t) {
    return switch (t.dtype()) {
      case I8 -> {
        Int8Tensor q = (Int8Tensor) t;
        yield eightBit(CudaKernels.QF_INT8, t, t.cols(), q.scales());
      }
      case F8_E4M3 -> eightBit(CudaKernels.QF_E4M3, t, t.cols(), ((Fp8Tensor) t).scales());
      case F8_E5M2 -> eightBit(CudaKernels.QF_E5M2, t, t.cols(), ((Fp8Tensor) t).scales());
      case I4 -> {
        Int4Tensor q = (Int4Tensor) t;
        int rowBytes = (t.cols() + 1) / 2;
        yield new QuantizedLayout(
            4,
            0,
            t.rows(),
            t.cols(),
            align16(rowBytes),
            q.groupSize(),
            q.groupsPerRow(),
            padRows(t.data(), t.rows(), rowBytes),
            q.scales(),
            q.asymmetric() ? q.zeroPoints() : null);
      }
      case Q8_0 -> ggml(t, 34, 32);
      case Q4_0 -> ggml(t, 18, 16);
      default ->
          throw new UnsupportedOperationException(
              "the CUDA backend has no quantized layout for " + t.dtype());
    };
  }

  private static QuantizedLayout eightBit(int format, Tensor t, int groupSize, float[] scales) {
    return new QuantizedLayout(
        8,
        format,
        t.rows(),
        t.cols(),
        align16(t.cols()),
        groupSize,
        1,
        padRows(t.data(), t.rows(), t.cols()),
        scales,
        null);
  }

  /** GGUF Q8_0 / Q4_0: 32-value blocks of an fp16 scale then {@code codeBytes} code bytes. */
  private static QuantizedLayout ggml(Tensor t, int blockBytes, int codeBytes) {
    int rows = t.rows();
    int cols = t.cols();
    int blocks = cols / 32;
    int rowBytes = blocks * codeBytes;
    int ldw = align16(rowBytes);
    MemorySegment src = t.data();
    MemorySegment codes = Arena.ofAuto().allocate((long) rows * ldw, 16);
    float[] scales = new float[rows * blocks];
    for (int r = 0; r < rows; r++) {
      for (int b = 0; b < blocks; b++) {
        long at = ((long) r * blocks + b) * blockBytes;
        scales[r * blocks + b] = Float.float16ToFloat(src.get(JAVA_SHORT_UNALIGNED, at));
        MemorySegment.copy(src, at + 2, codes, (long) r * ldw + (long) b * codeBytes, codeBytes);
      }
    }
    int format = CudaKernels.QF_INT8;
    return new QuantizedLayout(
        codeBytes == 32 ? 8 : 4, format, rows, cols, ldw, 32, blocks, codes, scales, null);
  }

  static int align16(int bytes) {
    return (bytes + 15) & ~15;
  }

  /** The rows of {@code src} ({@code rowBytes} each) at a 16-byte-aligned stride, zero-padded. */
  private static MemorySegment padRows(MemorySegment src, int rows, int rowBytes) {
    int ldw = align16(rowBytes);
    if (ldw == rowBytes) {
      return src;
    }
    MemorySegment out = Arena.ofAuto().allocate((long) rows * ldw, 16);
    for (int r = 0; r < rows; r++) {
      MemorySegment.copy(src, (long) r * rowBytes, out, (long) r * ldw, rowBytes);
    }
    return out;
  }

  /** Device bytes of the codes, scales and zero points. */
  public long deviceBytes() {
    return (long) rows * ldw + 4L * scales.length + (zeros == null ? 0 : zeros.length);
  }

  /**
   * {@code W[row][col]} decoded from this layout exactly as the kernels decode it: the scalar
   * reference of the layout.
   */
  public float value(int row, int col) {
    if (bits == 8) {
      int code = codes.get(JAVA_BYTE, (long) row * ldw + col) & 0xFF;
      float s = scales[row * groupsPerRow + col / groupSize];
      return s * decode8(code);
    }
    int g = col / groupSize;
    int j = col - g * groupSize;
    int len = Math.min(groupSize, cols - g * groupSize);
    int h = (len + 1) / 2;
    int b =
        codes.get(JAVA_BYTE, (long) row * ldw + (long) g * (groupSize / 2) + (j < h ? j : j - h))
            & 0xFF;
    int code = j < h ? b & 0xF : b >>> 4;
    int index = row * groupsPerRow + g;
    int zero = zeros == null ? 8 : zeros[index];
    return scales[index] * (float) (code - zero);
  }

  private float decode8(int code) {
    return switch (format) {
      case CudaKernels.QF_INT8 -> (float) (byte) code;
      case CudaKernels.QF_E4M3 -> Fp8Codes.decode(DType.F8_E4M3, code);
      case CudaKernels.QF_E5M2 -> Fp8Codes.decode(DType.F8_E5M2, code);
      default -> throw new IllegalStateException("format " + format);
    };
  }
}
