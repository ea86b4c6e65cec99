package io.kvant.engine.format.safetensors;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.json.JsonMapper;
import io.kvant.engine.format.ModelFormatException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Opens safetensors files: an 8-byte little-endian header length N, N bytes of JSON, then the data
 * area that the header's {@code data_offsets} index into.
 *
 * <p>Validation: N must be at most {@link #MAX_HEADER_BYTES} and fit in the file; the header must
 * be one JSON object without duplicate keys; every entry other than {@code __metadata__} needs a
 * known {@code dtype}, a {@code shape} of non-negative integers and {@code data_offsets [begin,
 * end]} with {@code 0 <= begin <= end <= data area size} and {@code end - begin} equal to the
 * element count times the dtype size; tensors must not overlap. Gaps between tensors are allowed.
 * {@code __metadata__}, if present, must map strings to strings. Every problem with the content is
 * a {@link ModelFormatException}.
 */
public final class SafetensorsReader {
  /** Largest JSON header accepted (100 MiB), so a hostile length cannot exhaust the heap. */
  public static final long MAX_HEADER_BYTES = 100L << 20;

  static final String METADATA_KEY = "__metadata__";

  private SafetensorsReader() {}

  /**
   * Maps and parses {@code file}.
   *
   * @throws ModelFormatException if the file is not a valid safetensors file
   * @throws IOException if it cannot be read
   */
  public static SafetensorsFile open(Path file) throws IOException {
    Arena arena = Arena.ofShared();
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = channel.size();
      if (size < 8) {
        throw new ModelFormatException(
            file, "file is " + size + " bytes, too small for the 8-byte safetensors header length");
      }
      MemorySegment segment = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
      return parse(file, arena, segment);
    } catch (IOException | RuntimeException | Error e) {
      arena.close();
      throw e;
    }
  }

  /**
   * Reads JSON rejecting duplicate keys and trailing content. An {@link ObjectReader} is immutable
   * and thread-safe, so one shared instance is not shared mutable state (and building a mapper per
   * file would cost more than parsing a small header).
   */
  static final ObjectReader STRICT_JSON =
      JsonMapper.builder()
          .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .build()
          .reader();

  private static SafetensorsFile parse(Path file, Arena arena, MemorySegment segment)
      throws ModelFormatException {
    long size = segment.byteSize();
    long headerLength =
        segment.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
    if (headerLength < 0 || headerLength > MAX_HEADER_BYTES) {
      throw new ModelFormatException(
          file,
          "header length "
              + Long.toUnsignedString(headerLength)
              + " exceeds the limit of "
              + MAX_HEADER_BYTES
              + " bytes");
    }
    if (headerLength > size - 8) {
      throw new ModelFormatException(
          file,
          "header length "
              + headerLength
              + " extends past end of file ("
              + size
              + " bytes, "
              + (size - 8)
              + " after the length)");
    }
    byte[] json = segment.asSlice(8, headerLength).toArray(ValueLayout.JAVA_BYTE);
    JsonNode root;
    try {
      root = STRICT_JSON.readTree(json);
    } catch (JacksonException e) {
      throw new ModelFormatException(
          file, "header is not valid JSON: " + e.getOriginalMessage(), e);
    } catch (IOException e) {
      throw new ModelFormatException(file, "header is not valid JSON: " + e.getMessage(), e);
    }
    if (root == null || !root.isObject()) {
      throw new ModelFormatException(file, "header is not a JSON object");
    }
    long dataOffset = 8 + headerLength;
    long dataSize = size - dataOffset;
    Map<String, String> metadata = Map.of();
    LinkedHashMap<String, SafetensorsTensor> tensors = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> e : root.properties()) {
      if (e.getKey().equals(METADATA_KEY)) {
        metadata = readMetadata(file, e.getValue());
      } else {
        tensors.put(e.getKey(), readEntry(file, e.getKey(), e.getValue(), dataOffset, dataSize));
      }
    }
    checkNoOverlap(file, tensors.values(), dataOffset);
    return new SafetensorsFile(file, arena, segment, dataOffset, metadata, tensors);
  }

  private static Map<String, String> readMetadata(Path file, JsonNode node)
      throws ModelFormatException {
    if (!node.isObject()) {
      throw new ModelFormatException(file, METADATA_KEY + " is not a JSON object");
    }
    LinkedHashMap<String, String> out = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> e : node.properties()) {
      if (!e.getValue().isTextual()) {
        throw new ModelFormatException(
            file, METADATA_KEY + " value of '" + e.getKey() + "' is not a string");
      }
      out.put(e.getKey(), e.getValue().textValue());
    }
    return out;
  }

  private static SafetensorsTensor readEntry(
      Path file, String name, JsonNode node, long dataOffset, long dataSize)
      throws ModelFormatException {
    String what = "tensor '" + name + "'";
    if (!node.isObject()) {
      throw new ModelFormatException(file, what + " entry is not a JSON object");
    }
    JsonNode dtypeNode = node.get("dtype");
    if (dtypeNode == null || !dtypeNode.isTextual()) {
      throw new ModelFormatException(file, what + " has no string 'dtype'");
    }
    SafetensorsDtype dtype =
        SafetensorsDtype.fromName(dtypeNode.textValue())
            .orElseThrow(
                () ->
                    new ModelFormatException(
                        file, what + " has unsupported dtype '" + dtypeNode.textValue() + "'"));
    long[] shape = readLongs(file, node.get("shape"), what + " 'shape'", -1);
    long[] offsets = readLongs(file, node.get("data_offsets"), what + " 'data_offsets'", 2);
    long elements = 1;
    long byteSize;
    try {
      for (long d : shape) {
        elements = Math.multiplyExact(elements, d);
      }
      byteSize = Math.multiplyExact(elements, (long) dtype.byteSize());
    } catch (ArithmeticException e) {
      throw new ModelFormatException(
          file, what + " shape " + Arrays.toString(shape) + " overflows the byte size");
    }
    long begin = offsets[0];
    long end = offsets[1];
    if (begin > end || end > dataSize) {
      throw new ModelFormatException(
          file,
          what
              + " data_offsets ["
              + begin
              + ", "
              + end
              + "] are not within the data area ("
              + dataSize
              + " bytes)");
    }
    if (end - begin != byteSize) {
      throw new ModelFormatException(
          file,
          what
              + " data_offsets ["
              + begin
              + ", "
              + end
              + "] span "
              + (end - begin)
              + " bytes but "
              + dtype
              + Arrays.toString(shape)
              + " needs "
              + byteSize);
    }
    return new SafetensorsTensor(name, dtype, shape, dataOffset + begin, byteSize);
  }

  /** A JSON array of non-negative integers that fit a long; {@code length < 0}: any length. */
  private static long[] readLongs(Path file, JsonNode node, String what, int length)
      throws ModelFormatException {
    if (node == null || !node.isArray()) {
      throw new ModelFormatException(file, what + " is missing or not an array");
    }
    if (length >= 0 && node.size() != length) {
      throw new ModelFormatException(
          file, what + " has " + node.size() + " elements, expected " + length);
    }
    long[] out = new long[node.size()];
    for (int i = 0; i < out.length; i++) {
      JsonNode n = node.get(i);
      if (!n.isIntegralNumber() || !n.canConvertToLong() || n.longValue() < 0) {
        throw new ModelFormatException(
            file, what + " element " + i + " (" + n + ") is not a non-negative 64-bit integer");
      }
      out[i] = n.longValue();
    }
    return out;
  }

  private static void checkNoOverlap(
      Path file, Iterable<SafetensorsTensor> tensors, long dataOffset) throws ModelFormatException {
    List<SafetensorsTensor> sorted = new ArrayList<>();
    tensors.forEach(sorted::add);
    // Empty tensors first at equal offsets, so an empty tensor at a neighbour's start never
    // "overlaps".
    sorted.sort(
        Comparator.comparingLong(SafetensorsTensor::offset)
            .thenComparingLong(SafetensorsTensor::byteSize));
    for (int i = 1; i < sorted.size(); i++) {
      SafetensorsTensor prev = sorted.get(i - 1);
      SafetensorsTensor next = sorted.get(i);
      if (next.offset() < prev.offset() + prev.byteSize()) {
        throw new ModelFormatException(
            file,
            "tensor '"
                + next.name()
                + "' data ["
                + (next.offset() - dataOffset)
                + ", "
                + (next.offset() - dataOffset + next.byteSize())
                + ") overlaps tensor '"
                + prev.name()
                + "' ["
                + (prev.offset() - dataOffset)
                + ", "
                + (prev.offset() - dataOffset + prev.byteSize())
                + ")");
      }
    }
  }
}
