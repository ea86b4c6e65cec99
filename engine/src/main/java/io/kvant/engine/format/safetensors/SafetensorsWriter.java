package io.kvant.engine.format.safetensors;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Builds a safetensors file from named tensors (dtype, shape, raw little-endian bytes) and optional
 * {@code __metadata__} strings.
 *
 * <p>Tensors are laid out contiguously in the order added. The JSON header is padded with spaces so
 * that the data area starts at a multiple of 8 bytes, as the format recommends. {@link #write}
 * writes to a temporary sibling file and then moves it into place, so a reader never sees a half
 * written file. The data given to {@link #add} is referenced, not copied: it must stay unchanged
 * (and, for a mapped segment, open) until {@link #write} returns; a {@link Content} is called then,
 * once. Not thread-safe.
 */
public final class SafetensorsWriter {
  // data holds the bytes, or content writes them (size bytes either way)
  private record Pending(
      String name,
      SafetensorsDtype dtype,
      long[] shape,
      long size,
      MemorySegment data,
      Content content) {}

  /**
   * A tensor's bytes written when the file is, instead of held until then: {@link #add(String,
   * SafetensorsDtype, long[], Content)}.
   */
  @FunctionalInterface
  public interface Content {
    /**
     * Writes the tensor's bytes, in order, through {@code out}.
     *
     * @param out takes the bytes; every call writes the whole buffer
     */
    void writeTo(ByteSink out) throws IOException;
  }

  /** Where a {@link Content} writes. */
  @FunctionalInterface
  public interface ByteSink {
    /** Writes all of {@code buffer}'s remaining bytes. */
    void write(ByteBuffer buffer) throws IOException;
  }

  private final Map<String, String> metadata = new LinkedHashMap<>();
  private final Map<String, Pending> tensors = new LinkedHashMap<>();

  /** Adds (or replaces) one {@code __metadata__} entry. */
  public SafetensorsWriter metadata(String key, String value) {
    metadata.put(Objects.requireNonNull(key, "key"), Objects.requireNonNull(value, "value"));
    return this;
  }

  /** Same as {@link #add(String, SafetensorsDtype, long[], MemorySegment)} for a byte array. */
  public SafetensorsWriter add(String name, SafetensorsDtype dtype, long[] shape, byte[] data) {
    return add(name, dtype, shape, MemorySegment.ofArray(data));
  }

  /**
   * Adds a tensor.
   *
   * @param shape dimensions, outermost first
   * @param data exactly {@code product(shape) * dtype.byteSize()} bytes, little-endian elements
   * @throws IllegalArgumentException if the name is reserved or already used, a dimension is
   *     negative, or the data size does not match
   */
  public SafetensorsWriter add(
      String name, SafetensorsDtype dtype, long[] shape, MemorySegment data) {
    long expected = checkedSize(name, dtype, shape);
    if (data.byteSize() != expected) {
      throw new IllegalArgumentException(
          "tensor '"
              + name
              + "' "
              + dtype
              + Arrays.toString(shape)
              + " needs "
              + expected
              + " bytes, got "
              + data.byteSize());
    }
    tensors.put(name, new Pending(name, dtype, shape.clone(), expected, data, null));
    return this;
  }

  /**
   * Adds a tensor whose bytes {@code content} writes when the file is written (so a large tensor
   * made row by row needs no copy of its own); {@link #write} fails if it writes another number of
   * bytes than the shape gives.
   *
   * @throws IllegalArgumentException as {@link #add(String, SafetensorsDtype, long[],
   *     MemorySegment)}, but for the data size
   */
  public SafetensorsWriter add(String name, SafetensorsDtype dtype, long[] shape, Content content) {
    long expected = checkedSize(name, dtype, shape);
    Objects.requireNonNull(content, "content");
    tensors.put(name, new Pending(name, dtype, shape.clone(), expected, null, content));
    return this;
  }

  /** The byte size of a tensor of {@code shape}, after checking its name and dimensions. */
  private long checkedSize(String name, SafetensorsDtype dtype, long[] shape) {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(dtype, "dtype");
    if (name.equals(SafetensorsReader.METADATA_KEY)) {
      throw new IllegalArgumentException("tensor name " + name + " is reserved");
    }
    if (tensors.containsKey(name)) {
      throw new IllegalArgumentException("duplicate tensor name '" + name + "'");
    }
    long elements = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException(
            "tensor '" + name + "' has a negative dimension: " + Arrays.toString(shape));
      }
      elements = Math.multiplyExact(elements, d);
    }
    return Math.multiplyExact(elements, (long) dtype.byteSize());
  }

  /** Writes the file, replacing any existing one. */
  public void write(Path file) throws IOException {
    byte[] header = header();
    Path dir = file.toAbsolutePath().getParent();
    Path tmp = Files.createTempFile(dir, file.getFileName().toString(), ".tmp");
    try {
      try (FileChannel out = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
        ByteBuffer length = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        length.putLong(header.length).flip();
        writeFully(out, length);
        writeFully(out, ByteBuffer.wrap(header));
        for (Pending p : tensors.values()) {
          if (p.data != null) {
            writeSegment(out, p.data);
            continue;
          }
          long[] written = {0};
          p.content.writeTo(
              buffer -> {
                written[0] += buffer.remaining();
                if (written[0] > p.size) {
                  throw new IOException(
                      "tensor '" + p.name + "' wrote more than its " + p.size + " bytes");
                }
                writeFully(out, buffer);
              });
          if (written[0] != p.size) {
            throw new IOException(
                "tensor '" + p.name + "' wrote " + written[0] + " of its " + p.size + " bytes");
          }
        }
        out.force(true);
      }
      io.kvant.engine.format.FileModes.readableByAll(tmp);
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  private byte[] header() {
    ObjectNode root = JsonNodeFactory.instance.objectNode();
    if (!metadata.isEmpty()) {
      ObjectNode meta = root.putObject(SafetensorsReader.METADATA_KEY);
      metadata.forEach(meta::put);
    }
    long offset = 0;
    for (Pending p : tensors.values()) {
      ObjectNode entry = root.putObject(p.name);
      entry.put("dtype", p.dtype.name());
      ArrayNode shape = entry.putArray("shape");
      for (long d : p.shape) {
        shape.add(d);
      }
      long end = offset + p.size;
      entry.putArray("data_offsets").add(offset).add(end);
      offset = end;
    }
    byte[] json = root.toString().getBytes(StandardCharsets.UTF_8);
    // Pad so that 8 + header length is a multiple of 8: the data area is then 8-byte aligned.
    int padded = (json.length + 7) & ~7;
    byte[] out = Arrays.copyOf(json, padded);
    Arrays.fill(out, json.length, padded, (byte) ' ');
    return out;
  }

  private static void writeSegment(FileChannel out, MemorySegment data) throws IOException {
    // ByteBuffers are int-indexed, so write large tensors in chunks.
    final long chunk = 1L << 30;
    List<MemorySegment> parts = new ArrayList<>();
    for (long at = 0; at < data.byteSize(); at += chunk) {
      parts.add(data.asSlice(at, Math.min(chunk, data.byteSize() - at)));
    }
    for (MemorySegment part : parts) {
      writeFully(out, part.asByteBuffer());
    }
  }

  private static void writeFully(FileChannel out, ByteBuffer buffer) throws IOException {
    while (buffer.hasRemaining()) {
      out.write(buffer);
    }
  }
}
