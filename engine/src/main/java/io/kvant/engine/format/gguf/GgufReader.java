package io.kvant.engine.format.gguf;

import io.kvant.engine.format.ModelFormatException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.LinkedHashMap;

/**
 * Opens GGUF (version 2 and 3, little-endian) model files.
 *
 * <p>Design note. The whole file is mapped read-only into a shared {@link Arena} owned by the
 * returned {@link GgufFile}; tensor data is never copied, callers get slices of that mapping. The
 * header, metadata and tensor infos (all small next to the weights) are parsed eagerly at open, so
 * every structural error surfaces there and later accessors are cheap. Parsing is defensive: the
 * file is untrusted input, so every count and length is checked against the bytes left in the file
 * before anything is allocated for it (each array element and each tensor info needs a known
 * minimum number of bytes, which bounds allocations by the file size), nested arrays are limited to
 * {@value #MAX_ARRAY_DEPTH} levels, dimension products and sizes use exact arithmetic, and every
 * tensor of a known type must be aligned and lie inside the file. Tensor names must be unique; so
 * must metadata keys.
 *
 * <p>Unknown tensor type ids are tolerated at open (a file may carry tensors kvant never uses, or
 * types newer than this reader); since their size cannot be known their data is not bounds-checked
 * and {@link GgufTensorInfo#byteSize()} / {@link GgufFile#tensorData} fail for them. Big-endian
 * GGUF files and version 1 (32-bit counts) are rejected with a message saying so.
 *
 * <p>Every problem with the file's content is reported as a {@link ModelFormatException}.
 */
public final class GgufReader {
  /** "GGUF" read as a little-endian uint32. */
  static final int MAGIC = 0x46554747;

  /** Alignment of tensor data when {@code general.alignment} is absent. */
  public static final int DEFAULT_ALIGNMENT = 32;

  /** Deepest nesting of arrays inside arrays accepted in metadata. */
  public static final int MAX_ARRAY_DEPTH = 8;

  /** Most dimensions a tensor may have (ggml's GGML_MAX_DIMS). */
  public static final int MAX_DIMS = 4;

  private static final String ALIGNMENT_KEY = "general.alignment";
  private static final int HEADER_BYTES = 24;
  // name length (8) + n_dims (4) + type (4) + offset (8), with an empty name and no dims.
  private static final int MIN_TENSOR_INFO_BYTES = 24;
  // key length (8) + value type (4) + the smallest value (1).
  private static final int MIN_KV_BYTES = 13;

  private GgufReader() {}

  /**
   * Maps and parses {@code file}.
   *
   * @throws ModelFormatException if the file is not a valid GGUF v2/v3 file
   * @throws IOException if it cannot be read
   */
  public static GgufFile open(Path file) throws IOException {
    Arena arena = Arena.ofShared();
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = channel.size();
      if (size < HEADER_BYTES) {
        throw new ModelFormatException(
            file,
            "file is " + size + " bytes, too small for a GGUF header (" + HEADER_BYTES + " bytes)");
      }
      MemorySegment segment = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
      return parse(file, arena, segment);
    } catch (IOException | RuntimeException | Error e) {
      arena.close();
      throw e;
    }
  }

  private static GgufFile parse(Path file, Arena arena, MemorySegment segment)
      throws ModelFormatException {
    GgufCursor in = new GgufCursor(file, segment);
    int magic = in.i32("magic");
    if (magic != MAGIC) {
      throw new ModelFormatException(
          file, String.format("bad magic 0x%08x, expected 'GGUF' (0x%08x)", magic, MAGIC));
    }
    int version = in.i32("version");
    checkVersion(file, version);
    long tensorCount = in.i64("tensor count");
    long kvCount = in.i64("metadata kv count");
    in.requireAvailable(kvCount, MIN_KV_BYTES, "metadata kv count");

    LinkedHashMap<String, GgufMetadata.Value> values = new LinkedHashMap<>();
    for (long i = 0; i < kvCount; i++) {
      String key = in.string("metadata key #" + i);
      String what = "metadata key '" + key + "'";
      GgufValueType type = valueType(in, in.u32(what + " value type"), what);
      Object value = readValue(in, type, 0, what);
      if (values.putIfAbsent(key, new GgufMetadata.Value(type, value)) != null) {
        throw new ModelFormatException(file, "duplicate metadata key '" + key + "'");
      }
    }
    GgufMetadata metadata = new GgufMetadata(file, values);
    long alignment = metadata.getLong(ALIGNMENT_KEY, DEFAULT_ALIGNMENT);
    if (alignment <= 0 || Long.bitCount(alignment) != 1 || alignment > (1 << 30)) {
      throw new ModelFormatException(
          file, ALIGNMENT_KEY + " is " + alignment + ", expected a power of two");
    }

    in.requireAvailable(tensorCount, MIN_TENSOR_INFO_BYTES, "tensor count");
    RawTensor[] raw = new RawTensor[(int) tensorCount];
    for (int i = 0; i < raw.length; i++) {
      raw[i] = readTensorInfo(in, i);
    }
    // The data section starts at the next multiple of the alignment after the tensor infos.
    long dataOffset = alignUp(in.position(), alignment);
    LinkedHashMap<String, GgufTensorInfo> tensors = new LinkedHashMap<>();
    for (RawTensor t : raw) {
      GgufTensorInfo info = place(file, t, alignment, dataOffset, segment.byteSize());
      if (tensors.putIfAbsent(t.name, info) != null) {
        throw new ModelFormatException(file, "duplicate tensor name '" + t.name + "'");
      }
    }
    return new GgufFile(file, arena, segment, version, alignment, dataOffset, metadata, tensors);
  }

  private static void checkVersion(Path file, int version) throws ModelFormatException {
    if (version == 2 || version == 3) {
      return;
    }
    if (version == 1) {
      throw new ModelFormatException(
          file, "GGUF version 1 is not supported (only versions 2 and 3); re-convert the model");
    }
    int swapped = Integer.reverseBytes(version);
    if (swapped == 2 || swapped == 3) {
      throw new ModelFormatException(
          file, "big-endian GGUF (version " + swapped + ") is not supported");
    }
    throw new ModelFormatException(
        file,
        "unsupported GGUF version "
            + Integer.toUnsignedString(version)
            + " (only versions 2 and 3)");
  }

  private static GgufValueType valueType(GgufCursor in, long id, String what)
      throws ModelFormatException {
    return GgufValueType.fromId(id)
        .orElseThrow(
            () ->
                new ModelFormatException(
                    in.file(),
                    what
                        + " has unknown value type "
                        + id
                        + " (before offset "
                        + in.position()
                        + ")"));
  }

  private static Object readValue(GgufCursor in, GgufValueType type, int depth, String what)
      throws ModelFormatException {
    return switch (type) {
      case UINT8 -> (long) in.u8(what);
      case INT8 -> (long) in.i8(what);
      case UINT16 -> Short.toUnsignedLong(in.i16(what));
      case INT16 -> (long) in.i16(what);
      case UINT32 -> in.u32(what);
      case INT32 -> (long) in.i32(what);
      case UINT64, INT64 -> in.i64(what);
      case FLOAT32 -> in.f32(what);
      case FLOAT64 -> in.f64(what);
      case BOOL -> readBool(in, what);
      case STRING -> in.string(what);
      case ARRAY -> readArray(in, depth + 1, what);
    };
  }

  private static boolean readBool(GgufCursor in, String what) throws ModelFormatException {
    long at = in.position();
    int b = in.u8(what);
    if (b > 1) {
      throw new ModelFormatException(
          in.file(), what + " bool at offset " + at + " is " + b + ", expected 0 or 1");
    }
    return b == 1;
  }

  private static GgufArray readArray(GgufCursor in, int depth, String what)
      throws ModelFormatException {
    if (depth > MAX_ARRAY_DEPTH) {
      throw new ModelFormatException(
          in.file(),
          what
              + " nests arrays deeper than "
              + MAX_ARRAY_DEPTH
              + " levels at offset "
              + in.position());
    }
    GgufValueType elementType = valueType(in, in.u32(what + " array element type"), what);
    long count = in.i64(what + " array length");
    in.requireAvailable(count, elementType.minEncodedSize(), what + " array length");
    // requireAvailable bounds count by the file size; arrays are also indexed by int.
    if (count > Integer.MAX_VALUE - 16) {
      throw new ModelFormatException(
          in.file(), what + " array of " + count + " elements is too long");
    }
    int n = (int) count;
    Object elements =
        switch (elementType) {
          case UINT8, INT8 -> copy(in, new byte[n], ValueLayout.JAVA_BYTE, n);
          case UINT16, INT16 -> copy(in, new short[n], GgufCursor.U16, n);
          case UINT32, INT32 -> copy(in, new int[n], GgufCursor.I32, n);
          case UINT64, INT64 -> copy(in, new long[n], GgufCursor.I64, n);
          case FLOAT32 -> copy(in, new float[n], GgufCursor.F32, n);
          case FLOAT64 -> copy(in, new double[n], GgufCursor.F64, n);
          case BOOL -> {
            boolean[] b = new boolean[n];
            for (int i = 0; i < n; i++) {
              b[i] = readBool(in, what);
            }
            yield b;
          }
          case STRING -> {
            String[] s = new String[n];
            for (int i = 0; i < n; i++) {
              s[i] = in.string(what + "[" + i + "]");
            }
            yield s;
          }
          case ARRAY -> {
            GgufArray[] a = new GgufArray[n];
            for (int i = 0; i < n; i++) {
              a[i] = readArray(in, depth + 1, what + "[" + i + "]");
            }
            yield a;
          }
        };
    return new GgufArray(elementType, elements, n);
  }

  private static Object copy(GgufCursor in, Object array, ValueLayout layout, int n) {
    in.copyInto(layout, array, n);
    return array;
  }

  /** A tensor info as read, before its offset and size are validated. */
  private record RawTensor(String name, long[] dims, int typeId, long relativeOffset) {}

  private static RawTensor readTensorInfo(GgufCursor in, int index) throws ModelFormatException {
    String name = in.string("tensor #" + index + " name");
    String what = "tensor '" + name + "'";
    long nDims = in.u32(what + " dimension count");
    if (nDims > MAX_DIMS) {
      throw new ModelFormatException(
          in.file(), what + " has " + nDims + " dimensions, at most " + MAX_DIMS + " are allowed");
    }
    long[] dims = new long[(int) nDims];
    for (int d = 0; d < dims.length; d++) {
      dims[d] = in.i64(what + " dimension " + d);
      if (dims[d] < 0) {
        throw new ModelFormatException(
            in.file(),
            what + " dimension " + d + " is " + Long.toUnsignedString(dims[d]) + ", too large");
      }
    }
    int typeId = in.i32(what + " type");
    long relativeOffset = in.i64(what + " offset");
    return new RawTensor(name, dims, typeId, relativeOffset);
  }

  private static GgufTensorInfo place(
      Path file, RawTensor t, long alignment, long dataOffset, long fileSize)
      throws ModelFormatException {
    String what = "tensor '" + t.name + "'";
    long elements = 1;
    for (long d : t.dims) {
      try {
        elements = Math.multiplyExact(elements, d);
      } catch (ArithmeticException e) {
        throw new ModelFormatException(
            file, what + " dims " + Arrays.toString(t.dims) + " overflow the element count");
      }
    }
    if (t.relativeOffset < 0 || t.relativeOffset % alignment != 0) {
      throw new ModelFormatException(
          file,
          what
              + " offset "
              + Long.toUnsignedString(t.relativeOffset)
              + " is not a multiple of the alignment "
              + alignment);
    }
    if (t.relativeOffset > fileSize - dataOffset) {
      throw new ModelFormatException(
          file,
          what
              + " data starts at offset "
              + t.relativeOffset
              + " of the data section (at "
              + dataOffset
              + "), past end of file ("
              + fileSize
              + " bytes)");
    }
    long offset = dataOffset + t.relativeOffset;
    GgmlType type = GgmlType.fromId(t.typeId).orElse(null);
    long byteSize = -1;
    if (type != null) {
      if (t.dims.length > 0 && t.dims[0] % type.blockSize() != 0) {
        throw new ModelFormatException(
            file,
            what
                + " of type "
                + type
                + " has ne0 = "
                + t.dims[0]
                + ", not a multiple of the block size "
                + type.blockSize());
      }
      try {
        byteSize = type.byteSize(elements);
      } catch (ArithmeticException | IllegalArgumentException e) {
        throw new ModelFormatException(
            file,
            what + " of type " + type + " dims " + Arrays.toString(t.dims) + ": " + e.getMessage());
      }
      if (byteSize > fileSize - offset) {
        throw new ModelFormatException(
            file,
            what
                + " data [offset "
                + offset
                + ", "
                + byteSize
                + " bytes] extends past end of file ("
                + fileSize
                + " bytes)");
      }
    }
    return new GgufTensorInfo(file, t.name, t.typeId, t.dims, elements, offset, byteSize);
  }

  private static long alignUp(long position, long alignment) {
    return (position + alignment - 1) & -alignment;
  }
}
