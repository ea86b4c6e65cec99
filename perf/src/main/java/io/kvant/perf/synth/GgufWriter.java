package io.kvant.perf.synth;

import io.kvant.engine.format.gguf.GgmlType;
import io.kvant.engine.format.gguf.GgufValueType;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * Writes GGUF version 3 files (little-endian) whose tensor data is streamed, so a file far larger
 * than memory can be produced: declare metadata and tensors, then {@link #open} the file and write
 * each tensor's bytes in declaration order.
 *
 * <p>Layout (the GGUF spec, as llama.cpp's {@code gguf} writer lays it out): magic {@code GGUF},
 * version 3, tensor count, key/value count, the key/values, the tensor infos (name, dims innermost
 * first, ggml type id, offset relative to the data section), zero padding to the alignment, then
 * the data, each tensor starting at a multiple of the alignment. The alignment is 32 unless set
 * with {@link #alignment}, which also writes it as {@code general.alignment} (uint32).
 *
 * <p>Not thread-safe.
 */
public final class GgufWriter {
  private static final int MAGIC = 0x46554747; // "GGUF" little-endian

  private record TensorInfo(String name, long[] dims, GgmlType type, long bytes) {}

  private final Out header = new Out();
  private final List<TensorInfo> tensors = new ArrayList<>();
  private final Set<String> keys = new HashSet<>();
  private final Set<String> names = new HashSet<>();
  private int kvCount;
  private int alignment = 32;

  /**
   * Sets the data alignment and writes it as {@code general.alignment}.
   *
   * @throws IllegalArgumentException unless a positive multiple of 8
   */
  public GgufWriter alignment(int alignment) {
    if (alignment <= 0 || alignment % 8 != 0) {
      throw new IllegalArgumentException("alignment must be a positive multiple of 8");
    }
    this.alignment = alignment;
    return putU32("general.alignment", alignment);
  }

  /** Adds a string value. */
  public GgufWriter putString(String key, String value) {
    key(key, GgufValueType.STRING);
    header.string(value);
    return this;
  }

  /** Adds a uint32 value. */
  public GgufWriter putU32(String key, long value) {
    key(key, GgufValueType.UINT32);
    header.i32((int) value);
    return this;
  }

  /** Adds a float32 value. */
  public GgufWriter putF32(String key, float value) {
    key(key, GgufValueType.FLOAT32);
    header.i32(Float.floatToRawIntBits(value));
    return this;
  }

  /** Adds a bool value. */
  public GgufWriter putBool(String key, boolean value) {
    key(key, GgufValueType.BOOL);
    header.write(value ? 1 : 0);
    return this;
  }

  /** Adds an array of strings. */
  public GgufWriter putStringArray(String key, List<String> values) {
    key(key, GgufValueType.ARRAY);
    header.i32(GgufValueType.STRING.id());
    header.i64(values.size());
    for (String v : values) {
      header.string(v);
    }
    return this;
  }

  /** Adds an array of float32. */
  public GgufWriter putF32Array(String key, float[] values) {
    key(key, GgufValueType.ARRAY);
    header.i32(GgufValueType.FLOAT32.id());
    header.i64(values.length);
    for (float v : values) {
      header.i32(Float.floatToRawIntBits(v));
    }
    return this;
  }

  /** Adds an array of int32. */
  public GgufWriter putI32Array(String key, int[] values) {
    key(key, GgufValueType.ARRAY);
    header.i32(GgufValueType.INT32.id());
    header.i64(values.length);
    for (int v : values) {
      header.i32(v);
    }
    return this;
  }

  /**
   * Declares a tensor; its data is written later, in declaration order.
   *
   * @param dims dimensions innermost first (ggml {@code ne}: for a matrix, {@code [cols, rows]})
   * @throws IllegalArgumentException for a duplicate name, a non-positive dimension, or an
   *     innermost dimension that is not a multiple of the type's block size
   */
  public GgufWriter tensor(String name, GgmlType type, long... dims) {
    if (!names.add(name)) {
      throw new IllegalArgumentException("duplicate tensor '" + name + "'");
    }
    long elements = 1;
    for (long d : dims) {
      if (d <= 0) {
        throw new IllegalArgumentException("tensor '" + name + "': dims must be positive");
      }
      elements = Math.multiplyExact(elements, d);
    }
    if (dims[0] % type.blockSize() != 0) {
      throw new IllegalArgumentException(
          "tensor '" + name + "': ne0 must be a multiple of " + type.blockSize());
    }
    long bytes = elements / type.blockSize() * type.bytesPerBlock();
    tensors.add(new TensorInfo(name, dims.clone(), type, bytes));
    return this;
  }

  /** Bytes of the data of the {@code i}-th declared tensor. */
  public long tensorBytes(int i) {
    return tensors.get(i).bytes;
  }

  /** Number of declared tensors. */
  public int tensorCount() {
    return tensors.size();
  }

  /** Total file size once every tensor is written. */
  public long fileSize() {
    return dataStart() + dataSize();
  }

  /**
   * Creates (or truncates) {@code file}, writes the header and returns a sink for the tensor data.
   */
  public DataSink open(Path file) throws IOException {
    FileChannel ch =
        FileChannel.open(
            file,
            StandardOpenOption.CREATE,
            StandardOpenOption.WRITE,
            StandardOpenOption.TRUNCATE_EXISTING);
    try {
      ByteBuffer head = ByteBuffer.wrap(headerBytes());
      while (head.hasRemaining()) {
        ch.write(head);
      }
    } catch (IOException | RuntimeException e) {
      ch.close();
      throw e;
    }
    return new DataSink(ch);
  }

  private long dataSize() {
    long at = 0;
    for (TensorInfo t : tensors) {
      at = align(at) + t.bytes;
    }
    return at;
  }

  private long dataStart() {
    return align(headerBytesUnpadded().length);
  }

  private byte[] headerBytesUnpadded() {
    Out out = new Out();
    out.i32(MAGIC);
    out.i32(3);
    out.i64(tensors.size());
    out.i64(kvCount);
    out.write(header.toByteArray(), 0, header.size());
    long offset = 0;
    for (TensorInfo t : tensors) {
      offset = align(offset);
      out.string(t.name);
      out.i32(t.dims.length);
      for (long d : t.dims) {
        out.i64(d);
      }
      out.i32(t.type.id());
      out.i64(offset);
      offset += t.bytes;
    }
    return out.toByteArray();
  }

  private byte[] headerBytes() {
    byte[] raw = headerBytesUnpadded();
    return java.util.Arrays.copyOf(raw, (int) align(raw.length));
  }

  private long align(long at) {
    return (at + alignment - 1) / alignment * alignment;
  }

  private void key(String key, GgufValueType type) {
    if (!keys.add(key)) {
      throw new IllegalArgumentException("duplicate key '" + key + "'");
    }
    header.string(key);
    header.i32(type.id());
    kvCount++;
  }

  /**
   * Receives the tensors' data in declaration order; pads between tensors itself. {@link #close()}
   * fails if a tensor is incomplete.
   */
  public final class DataSink implements AutoCloseable {
    private final FileChannel ch;
    private int current;
    private long writtenInCurrent;
    private long position;

    private DataSink(FileChannel ch) {
      this.ch = ch;
    }

    /** Index of the tensor the next bytes belong to ({@link #tensorCount()} when all are done). */
    public int currentTensor() {
      return current;
    }

    /**
     * Writes the next bytes of the current tensor (all remaining bytes of {@code data}).
     *
     * @throws IllegalStateException if {@code data} runs past the end of the current tensor
     */
    public void write(ByteBuffer data) throws IOException {
      if (current >= tensors.size()) {
        throw new IllegalStateException("all tensors are already written");
      }
      TensorInfo t = tensors.get(current);
      if (writtenInCurrent + data.remaining() > t.bytes) {
        throw new IllegalStateException(
            "tensor '" + t.name + "': " + (writtenInCurrent + data.remaining()) + " > " + t.bytes);
      }
      if (writtenInCurrent == 0) {
        pad();
      }
      int n = data.remaining();
      while (data.hasRemaining()) {
        ch.write(data);
      }
      writtenInCurrent += n;
      position += n;
      if (writtenInCurrent == t.bytes) {
        current++;
        writtenInCurrent = 0;
      }
    }

    private void pad() throws IOException {
      long aligned = align(position);
      if (aligned > position) {
        ByteBuffer zeros = ByteBuffer.allocate((int) (aligned - position));
        while (zeros.hasRemaining()) {
          ch.write(zeros);
        }
        position = aligned;
      }
    }

    /**
     * Closes the file.
     *
     * @throws IllegalStateException if not every tensor was written in full (the file is closed)
     */
    @Override
    public void close() throws IOException {
      ch.close();
      if (current != tensors.size()) {
        throw new IllegalStateException(
            "only "
                + current
                + " of "
                + tensors.size()
                + " tensors written; the file is incomplete");
      }
    }
  }

  private static final class Out extends ByteArrayOutputStream {
    private final ByteBuffer scratch = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);

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
  }
}
