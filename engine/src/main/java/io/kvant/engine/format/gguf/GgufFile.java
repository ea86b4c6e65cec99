package io.kvant.engine.format.gguf;

import io.kvant.engine.format.ModelFormatException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * An open, validated GGUF file: its metadata, its tensor infos and zero-copy views of tensor data.
 *
 * <p>Owns a shared {@link Arena} and the read-only mapping of the whole file. {@link #close()}
 * unmaps it; every segment returned by {@link #tensorData} or {@link #segment()} becomes
 * inaccessible (access then throws {@link IllegalStateException}). Safe for concurrent reads from
 * any thread while open.
 */
public final class GgufFile implements AutoCloseable {
  private final Path path;
  private final Arena arena;
  private final MemorySegment segment;
  private final int version;
  private final long alignment;
  private final long dataOffset;
  private final GgufMetadata metadata;
  private final Map<String, GgufTensorInfo> tensors;
  private final AtomicBoolean closed = new AtomicBoolean();

  GgufFile(
      Path path,
      Arena arena,
      MemorySegment segment,
      int version,
      long alignment,
      long dataOffset,
      GgufMetadata metadata,
      LinkedHashMap<String, GgufTensorInfo> tensors) {
    this.path = path;
    this.arena = arena;
    this.segment = segment;
    this.version = version;
    this.alignment = alignment;
    this.dataOffset = dataOffset;
    this.metadata = metadata;
    this.tensors = Collections.unmodifiableMap(tensors);
  }

  /** The file this was read from. */
  public Path path() {
    return path;
  }

  /** GGUF format version (2 or 3). */
  public int version() {
    return version;
  }

  /** Alignment of tensor data in bytes ({@code general.alignment}, default 32). */
  public long alignment() {
    return alignment;
  }

  /** Absolute offset where the tensor data section starts. */
  public long dataOffset() {
    return dataOffset;
  }

  /** Size of the file in bytes. */
  public long fileSize() {
    return segment.byteSize();
  }

  /** The whole mapped file, read-only. */
  public MemorySegment segment() {
    return segment;
  }

  /** The metadata key/value pairs. */
  public GgufMetadata metadata() {
    return metadata;
  }

  /** All tensor infos, in file order. */
  public List<GgufTensorInfo> tensors() {
    return List.copyOf(tensors.values());
  }

  /** Number of tensors. */
  public int tensorCount() {
    return tensors.size();
  }

  /** The tensor named {@code name}, or empty. */
  public Optional<GgufTensorInfo> findTensor(String name) {
    return Optional.ofNullable(tensors.get(name));
  }

  /** The tensor named {@code name}; a missing name is a {@link ModelFormatException}. */
  public GgufTensorInfo tensor(String name) throws ModelFormatException {
    GgufTensorInfo info = tensors.get(name);
    if (info == null) {
      throw new ModelFormatException(path, "no tensor named '" + name + "'");
    }
    return info;
  }

  /**
   * A read-only, zero-copy slice holding exactly the tensor's bytes.
   *
   * @throws ModelFormatException if there is no such tensor or its type id is unknown
   */
  public MemorySegment tensorData(String name) throws ModelFormatException {
    return tensorData(tensor(name));
  }

  /** Same as {@link #tensorData(String)} for an info taken from this file. */
  public MemorySegment tensorData(GgufTensorInfo info) throws ModelFormatException {
    return segment.asSlice(info.offset(), info.byteSize());
  }

  /** Same as {@link GgufMetadata#keys()}. */
  public Set<String> keys() {
    return metadata.keys();
  }

  /** Same as {@link GgufMetadata#getString(String)}. */
  public String getString(String key) throws ModelFormatException {
    return metadata.getString(key);
  }

  /** Same as {@link GgufMetadata#findString(String)}. */
  public Optional<String> findString(String key) throws ModelFormatException {
    return metadata.findString(key);
  }

  /** Same as {@link GgufMetadata#getInt(String)}. */
  public int getInt(String key) throws ModelFormatException {
    return metadata.getInt(key);
  }

  /** Same as {@link GgufMetadata#getInt(String, int)}. */
  public int getInt(String key, int defaultValue) throws ModelFormatException {
    return metadata.getInt(key, defaultValue);
  }

  /** Same as {@link GgufMetadata#getLong(String)}. */
  public long getLong(String key) throws ModelFormatException {
    return metadata.getLong(key);
  }

  /** Same as {@link GgufMetadata#getLong(String, long)}. */
  public long getLong(String key, long defaultValue) throws ModelFormatException {
    return metadata.getLong(key, defaultValue);
  }

  /** Same as {@link GgufMetadata#getFloat(String)}. */
  public float getFloat(String key) throws ModelFormatException {
    return metadata.getFloat(key);
  }

  /** Same as {@link GgufMetadata#getFloat(String, float)}. */
  public float getFloat(String key, float defaultValue) throws ModelFormatException {
    return metadata.getFloat(key, defaultValue);
  }

  /** Same as {@link GgufMetadata#getBoolean(String)}. */
  public boolean getBoolean(String key) throws ModelFormatException {
    return metadata.getBoolean(key);
  }

  /** Same as {@link GgufMetadata#getBoolean(String, boolean)}. */
  public boolean getBoolean(String key, boolean defaultValue) throws ModelFormatException {
    return metadata.getBoolean(key, defaultValue);
  }

  /** Same as {@link GgufMetadata#getStringArray(String)}. */
  public List<String> getStringArray(String key) throws ModelFormatException {
    return metadata.getStringArray(key);
  }

  /** Same as {@link GgufMetadata#getFloatArray(String)}. */
  public float[] getFloatArray(String key) throws ModelFormatException {
    return metadata.getFloatArray(key);
  }

  /** Same as {@link GgufMetadata#getIntArray(String)}. */
  public int[] getIntArray(String key) throws ModelFormatException {
    return metadata.getIntArray(key);
  }

  /** Unmaps the file. Idempotent. */
  @Override
  public void close() {
    if (closed.compareAndSet(false, true)) {
      arena.close();
    }
  }
}
