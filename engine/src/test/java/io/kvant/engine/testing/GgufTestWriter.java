package io.kvant.engine.testing;

import io.kvant.engine.format.gguf.GgufValueType;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Test-only builder of GGUF files (little-endian), including deliberately malformed ones.
 *
 * <p>Metadata values: integers as any {@link Number}, {@code Float}/{@code Double}, {@code
 * Boolean}, {@code String}, and {@link Array} for arrays (nested arrays are {@code Array}
 * elements). Tensors get the next aligned offset unless one is given explicitly. The file layout
 * follows the GGUF spec: header, key/values, tensor infos, padding to the alignment, data.
 */
public final class GgufTestWriter {
  /** A GGUF array value; elements follow the same conventions as scalar values. */
  public record Array(GgufValueType elementType, List<?> elements) {}

  private record Kv(String key, GgufValueType type, Object value) {}

  private record Tensor(String name, int typeId, long[] dims, Long offset, byte[] data) {}

  private int magic = 0x46554747;
  private int version = 3;
  private long alignment = 32;
  private Long tensorCountOverride;
  private Long kvCountOverride;
  private final List<Kv> kvs = new ArrayList<>();
  private final List<Tensor> tensors = new ArrayList<>();

  /** Sets the version field (default 3). */
  public GgufTestWriter version(int version) {
    this.version = version;
    return this;
  }

  /** Sets the magic field (default "GGUF"). */
  public GgufTestWriter magic(int magic) {
    this.magic = magic;
    return this;
  }

  /** Adds a uint32 {@code general.alignment} and lays tensors out with it. */
  public GgufTestWriter alignment(int alignment) {
    this.alignment = alignment;
    return kv("general.alignment", GgufValueType.UINT32, alignment);
  }

  /** Writes this tensor count in the header instead of the real one. */
  public GgufTestWriter tensorCountOverride(long count) {
    this.tensorCountOverride = count;
    return this;
  }

  /** Writes this kv count in the header instead of the real one. */
  public GgufTestWriter kvCountOverride(long count) {
    this.kvCountOverride = count;
    return this;
  }

  /** Adds a key/value pair. */
  public GgufTestWriter kv(String key, GgufValueType type, Object value) {
    kvs.add(new Kv(key, type, value));
    return this;
  }

  /** Adds a tensor at the next aligned offset of the data section. */
  public GgufTestWriter tensor(String name, int typeId, long[] dims, byte[] data) {
    tensors.add(new Tensor(name, typeId, dims.clone(), null, data.clone()));
    return this;
  }

  /** Adds a tensor at an explicit offset relative to the data section (may be bogus). */
  public GgufTestWriter tensorAt(String name, int typeId, long[] dims, long offset, byte[] data) {
    tensors.add(new Tensor(name, typeId, dims.clone(), offset, data.clone()));
    return this;
  }

  /** The offset (relative to the data section) each tensor gets, in the order added. */
  public long[] relativeOffsets() {
    long[] out = new long[tensors.size()];
    long next = 0;
    for (int i = 0; i < out.length; i++) {
      Tensor t = tensors.get(i);
      out[i] = t.offset != null ? t.offset : align(next);
      next = Math.max(next, out[i] + t.data.length);
    }
    return out;
  }

  /** Encodes the file. */
  public byte[] toBytes() {
    Out out = new Out();
    out.i32(magic);
    out.i32(version);
    out.i64(tensorCountOverride != null ? tensorCountOverride : tensors.size());
    out.i64(kvCountOverride != null ? kvCountOverride : kvs.size());
    for (Kv kv : kvs) {
      out.string(kv.key);
      out.i32(kv.type.id());
      out.value(kv.type, kv.value);
    }
    long[] offsets = relativeOffsets();
    for (int i = 0; i < tensors.size(); i++) {
      Tensor t = tensors.get(i);
      out.string(t.name);
      out.i32(t.dims.length);
      for (long d : t.dims) {
        out.i64(d);
      }
      out.i32(t.typeId);
      out.i64(offsets[i]);
    }
    int dataStart = (int) align(out.size());
    out.pad(dataStart);
    for (int i = 0; i < tensors.size(); i++) {
      int at = (int) (dataStart + offsets[i]);
      out.pad(at);
      out.overwriteOrAppend(at, tensors.get(i).data);
    }
    return out.toByteArray();
  }

  /** Encodes the file and writes it to {@code file}. */
  public Path write(Path file) throws IOException {
    Files.write(file, toBytes());
    return file;
  }

  private long align(long position) {
    return (position + alignment - 1) / alignment * alignment;
  }

  private static final class Out extends ByteArrayOutputStream {
    private final ByteBuffer scratch = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);

    void i8(int v) {
      write(v);
    }

    void i16(int v) {
      scratch.clear();
      write(scratch.putShort((short) v).array(), 0, 2);
    }

    void i32(int v) {
      scratch.clear();
      write(scratch.putInt(v).array(), 0, 4);
    }

    void i64(long v) {
      scratch.clear();
      write(scratch.putLong(v).array(), 0, 8);
    }

    void string(String s) {
      byte[] b = s.getBytes(StandardCharsets.UTF_8);
      i64(b.length);
      write(b, 0, b.length);
    }

    void pad(int to) {
      while (size() < to) {
        write(0);
      }
    }

    void overwriteOrAppend(int at, byte[] data) {
      for (int i = 0; i < data.length; i++) {
        if (at + i < count) {
          buf[at + i] = data[i];
        } else {
          write(data[i]);
        }
      }
    }

    void value(GgufValueType type, Object v) {
      switch (type) {
        case UINT8, INT8 -> i8(((Number) v).intValue());
        case UINT16, INT16 -> i16(((Number) v).intValue());
        case UINT32, INT32 -> i32(((Number) v).intValue());
        case UINT64, INT64 -> i64(((Number) v).longValue());
        case FLOAT32 -> i32(Float.floatToRawIntBits(((Number) v).floatValue()));
        case FLOAT64 -> i64(Double.doubleToRawLongBits(((Number) v).doubleValue()));
        case BOOL -> i8(v instanceof Boolean b ? (b ? 1 : 0) : ((Number) v).intValue());
        case STRING -> string((String) v);
        case ARRAY -> {
          Array a = (Array) v;
          i32(a.elementType().id());
          i64(a.elements().size());
          for (Object e : a.elements()) {
            value(a.elementType(), e);
          }
        }
      }
    }
  }
}
