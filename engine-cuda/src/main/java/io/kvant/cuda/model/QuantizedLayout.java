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
 * <p>Tiled layout ({@code tiled}): for the tensor-core decode kernels ({@code mq4} and {@code mq8}
 * in {@code kvant.cu}, whose comments have the exact orders), used for 4-bit matrices whose width
 * is a multiple of 64 and whose groups are a power of two of at least 32 columns (every layer of
 * the Llama shapes, Q4_0 included), and for INT8 and FP8 E4M3 matrices whose width is a multiple of
 * 32 with one group per row or power-of-two groups of 32 or more (Q8_0): rows in tiles of 16 (the
 * last one padded with zero codes), each tile's columns in chunks of 512 bytes (64 columns of 4-bit
 * codes, 32 of 8-bit ones), every 4-byte word one lane's share of an A fragment of a 16x16 product.
 * {@code ldw} is then the bytes of a row, spread over its tile ({@code cols / 2} or {@code cols}),
 * and the codes take {@code ceil(rows / 16) * 16 * ldw} bytes.
 *
 * @param bits 8 or 4
 * @param format for 8-bit codes, {@link CudaKernels#QF_INT8}, {@code QF_E4M3} or {@code QF_E5M2}
 * @param codes {@link #codeBytes()} bytes
 * @param zeros null when symmetric (or 8-bit)
 * @param tiled whether the codes are in the tiled layout
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
    byte[] zeros,
    boolean tiled) {

  /** Whether the CUDA backend reads {@code type} through this layout. */
  public static boolean handles(DType type) {
    return switch (type) {
      case I8, I4, F8_E4M3, F8_E5M2, Q8_0, Q4_0 -> true;
      default -> false;
    };
  }

  /**
   * The layout of {@code t}: codes {@link #tiles tiled} where the shape allows.
   *
   * @throws UnsupportedOperationException naming the type when it is not {@link #handles handled}
   */
  public static QuantizedLayout of(Tensor t) {
    return of(t, true, true);
  }

  /**
   * The layout of {@code t}, codes tiled only when {@code tile} and the shape allows (false keeps
   * the row-major layout that {@code mgemv} reads, for comparing the two).
   */
  public static QuantizedLayout of(Tensor t, boolean tile) {
    return of(t, tile, tile);
  }

  /**
   * The layout of {@code t}: 4-bit codes tiled when {@code tileFourBit}, 8-bit ones when {@code
   * tileEightBit} (and the shape allows). W8A8 ({@code W8a8Products}) hands row-major 8-bit codes
   * to cuBLASLt, so a device that uses it keeps them row-major.
   */
  public static QuantizedLayout of(Tensor t, boolean tileFourBit, boolean tileEightBit) {
    QuantizedLayout rows = rowMajor(t);
    boolean tile = rows.bits == 4 ? tileFourBit : tileEightBit;
    return tile && rows.tiles() ? rows.toTiled() : rows;
  }

  /** Whether this row-major layout's codes can take the tiled layout. */
  private boolean tiles() {
    return tiles(bits, format, cols, groupSize, groupsPerRow);
  }

  /**
   * Whether codes of this width, format and grouping take the tiled layout: 4-bit codes in widths a
   * multiple of 64 and power-of-two groups of 32 or more dividing them; INT8 and FP8 E4M3 codes
   * (not E5M2) in widths a multiple of 32 with one group per row or such groups.
   */
  public static boolean tiles(int bits, int format, int cols, int groupSize, int groupsPerRow) {
    boolean groups = groupSize >= 32 && Integer.bitCount(groupSize) == 1 && cols % groupSize == 0;
    if (bits == 8) {
      return format != CudaKernels.QF_E5M2 && cols % 32 == 0 && (groupsPerRow == 1 || groups);
    }
    return bits == 4 && cols % 64 == 0 && groups;
  }

  private static QuantizedLayout rowMajor(Tensor t) {
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
            q.asymmetric() ? q.zeroPoints() : null,
            false);
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
        null,
        false);
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
        codeBytes == 32 ? 8 : 4, format, rows, cols, ldw, 32, blocks, codes, scales, null, false);
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

  /** Bytes of the codes. */
  public long codeBytes() {
    return tiled ? ((rows + 15L) / 16) * 16 * ldw : (long) rows * ldw;
  }

  /** Device bytes of the codes, scales and zero points. */
  public long deviceBytes() {
    return codeBytes() + 4L * scales.length + (zeros == null ? 0 : zeros.length);
  }

  /** The code (0..15) of {@code W[row][col]} in this row-major 4-bit layout. */
  private int rowMajorCode(int row, int col) {
    int g = col / groupSize;
    int j = col - g * groupSize;
    int len = Math.min(groupSize, cols - g * groupSize);
    int h = (len + 1) / 2;
    int b =
        codes.get(JAVA_BYTE, (long) row * ldw + (long) g * (groupSize / 2) + (j < h ? j : j - h))
            & 0xFF;
    return j < h ? b & 0xF : b >>> 4;
  }

  /** Byte offset of the word holding {@code W[row][col]} in the tiled layout, and its nibble. */
  private static long tiledByte(int row, int col, int cols) {
    int g = row & 7;
    int high = (row >> 3) & 1;
    int j = (col >> 4) & 3;
    int t = (col >> 2) & 3;
    int p = col & 3;
    int nibble = high + ((p & 1) << 2) + (p & 2); // pos(nibble) = p, row g + 8 * (nibble & 1)
    long word = (((long) (row >> 4) * (cols >> 6) + (col >> 6)) * 32 + g * 4 + t) * 4 + j;
    return (word * 4 + (nibble >> 1)) << 1 | (nibble & 1);
  }

  /**
   * Byte offset of {@code W[row][col]} in the tiled 8-bit layout: chunk (row tile, 32 columns),
   * lane {@code 4 * (row % 8) + (col % 16) / 4}, word {@code 2 * ((col % 32) / 16) + (row % 16) /
   * 8}, byte {@code col % 4}.
   */
  private static long tiledByte8(int row, int col, int cols) {
    long chunk = (long) (row >> 4) * (cols >> 5) + (col >> 5);
    int lane = (row & 7) * 4 + ((col >> 2) & 3);
    int word = ((col >> 4) & 1) * 2 + ((row >> 3) & 1);
    return chunk * 512 + lane * 16 + word * 4 + (col & 3);
  }

  /** This row-major 8-bit layout rearranged into the tiled one (same scales). */
  private QuantizedLayout toTiled8() {
    int[] dst = new int[cols];
    for (int c = 0; c < cols; c++) {
      dst[c] = (int) tiledByte8(0, c, cols);
    }
    MemorySegment out =
        byTiles(
            16L * cols,
            (r, tileStart, src, tile) -> {
              int base = (int) (tiledByte8(r, 0, cols) - tileStart);
              for (int c = 0; c < cols; c++) {
                tile[base + dst[c]] = src[c];
              }
            });
    return new QuantizedLayout(
        8, format, rows, cols, cols, groupSize, groupsPerRow, out, scales, null, true);
  }

  /** Scatters row {@code r}'s codes ({@code src}) into the heap copy of its tile. */
  private interface RowScatter {
    void scatter(int r, long tileStart, byte[] src, byte[] tile);
  }

  /**
   * Tiled codes of {@code tileBytes} per 16-row tile (the last one padded with zero codes), made
   * tile by tile in parallel, each tile in a heap array that {@code scatter} fills one row at a
   * time ({@code tileStart}: the tile's byte offset in the result).
   */
  private MemorySegment byTiles(long tileBytes, RowScatter scatter) {
    int tiles = (rows + 15) / 16;
    MemorySegment out = Arena.ofAuto().allocate(tiles * tileBytes, 16);
    java.util.stream.IntStream.range(0, tiles)
        .parallel()
        .forEach(
            rt -> {
              byte[] tile = new byte[(int) tileBytes];
              byte[] src = new byte[ldw];
              for (int r = rt * 16; r < Math.min(rows, rt * 16 + 16); r++) {
                MemorySegment.copy(codes, JAVA_BYTE, (long) r * ldw, src, 0, ldw);
                scatter.scatter(r, rt * tileBytes, src, tile);
              }
              MemorySegment.copy(tile, 0, out, JAVA_BYTE, rt * tileBytes, tile.length);
            });
    return out;
  }

  /**
   * This row-major 4-bit layout rearranged into the tiled one (same scales and zero points). A
   * nibble's place splits into a part from its row and a part from its column (see {@link
   * #tiledByte}), so both layouts' column parts are computed once per matrix and each row is a
   * gather of nibbles into a heap copy of its tile: an 8B-shaped 14336x4096 matrix in 140-170 ms on
   * two shared cores (load average 3), against 470 for the per-element form.
   */
  private QuantizedLayout toTiled() {
    if (bits == 8) {
      return toTiled8();
    }
    int half = cols / 2;
    // whole groups (tiles() holds): column c of group g is nibble (c % G < G / 2 ? low : high) of
    // byte g * G / 2 + c % (G / 2) of its row
    int[] srcByte = new int[cols];
    int[] srcShift = new int[cols];
    int[] dstByte = new int[cols];
    for (int c = 0; c < cols; c++) {
      int j = c % groupSize;
      srcByte[c] = c / groupSize * (groupSize / 2) + j % (groupSize / 2);
      srcShift[c] = j < groupSize / 2 ? 0 : 4;
      dstByte[c] = (int) (tiledByte(0, c, cols) >> 1); // row 0: the low nibble
    }
    // the two nibbles of a byte are rows g and g + 8 of one tile
    MemorySegment out =
        byTiles(
            16L * half,
            (r, tileStart, src, tile) -> {
              long at = tiledByte(r, 0, cols) - (tileStart << 1);
              int dst = (int) (at >> 1);
              int rowShift = (int) (at & 1) * 4;
              for (int c = 0; c < cols; c++) {
                int code = (src[srcByte[c]] >> srcShift[c]) & 0xF;
                tile[dst + dstByte[c]] |= (byte) (code << rowShift);
              }
            });
    return new QuantizedLayout(
        4, format, rows, cols, half, groupSize, groupsPerRow, out, scales, zeros, true);
  }

  /**
   * {@code W[row][col]} decoded from this layout exactly as the kernels decode it: the scalar
   * reference of the layout.
   */
  public float value(int row, int col) {
    if (bits == 8) {
      long at = tiled ? tiledByte8(row, col, cols) : (long) row * ldw + col;
      int code = codes.get(JAVA_BYTE, at) & 0xFF;
      float s = scales[row * groupsPerRow + col / groupSize];
      return s * decode8(code);
    }
    int g = col / groupSize;
    int code;
    if (tiled) {
      long at = tiledByte(row, col, cols);
      code = (codes.get(JAVA_BYTE, at >> 1) >>> ((int) (at & 1) * 4)) & 0xF;
    } else {
      code = rowMajorCode(row, col);
    }
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
