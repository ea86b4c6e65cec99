package io.kvant.engine.format.safetensors;

import io.kvant.engine.format.ModelFormatException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * An open, validated safetensors file: its {@code __metadata__} and zero-copy tensor views.
 *
 * <p>Owns a shared {@link Arena} and the read-only mapping of the whole file; {@link #close()}
 * unmaps it, after which segments returned by {@link #tensorData} are inaccessible. Safe for
 * concurrent reads while open.
 */
public final class SafetensorsFile implements AutoCloseable {
  private final Path path;
  private final Arena arena;
  private final MemorySegment segment;
  private final long dataOffset;
  private final Map<String, String> metadata;
  private final Map<String, SafetensorsTensor> tensors;
  private final AtomicBoolean closed = new AtomicBoolean();

  SafetensorsFile(
      Path path,
      Arena arena,
      MemorySegment segment,
      long dataOffset,
      Map<String, String> metadata,
      LinkedHashMap<String, SafetensorsTensor> tensors) {
    this.path = path;
    this.arena = arena;
    this.segment = segment;
    this.dataOffset = dataOffset;
    this.metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
    this.tensors = Collections.unmodifiableMap(tensors);
  }

  /** The file this was read from. */
  public Path path() {
    return path;
  }

  /** Absolute offset of the data area (8 + header length). */
  public long dataOffset() {
    return dataOffset;
  }

  /** Size of the file in bytes. */
  public long fileSize() {
    return segment.byteSize();
  }

  /** The header's {@code __metadata__} string map (empty if absent), in header order. */
  public Map<String, String> metadata() {
    return metadata;
  }

  /** Tensor names, in header order. */
  public List<String> tensorNames() {
    return List.copyOf(tensors.keySet());
  }

  /** All tensors, in header order. */
  public List<SafetensorsTensor> tensors() {
    return List.copyOf(tensors.values());
  }

  /** Whether a tensor named {@code name} exists. */
  public boolean contains(String name) {
    return tensors.containsKey(name);
  }

  /** The tensor named {@code name}, or empty. */
  public Optional<SafetensorsTensor> findTensor(String name) {
    return Optional.ofNullable(tensors.get(name));
  }

  /** The tensor named {@code name}; a missing name is a {@link ModelFormatException}. */
  public SafetensorsTensor tensor(String name) throws ModelFormatException {
    SafetensorsTensor t = tensors.get(name);
    if (t == null) {
      throw new ModelFormatException(path, "no tensor named '" + name + "'");
    }
    return t;
  }

  /** A read-only, zero-copy slice holding exactly the tensor's bytes. */
  public MemorySegment tensorData(String name) throws ModelFormatException {
    SafetensorsTensor t = tensor(name);
    return segment.asSlice(t.offset(), t.byteSize());
  }

  /** Unmaps the file. Idempotent. */
  @Override
  public void close() {
    if (closed.compareAndSet(false, true)) {
      arena.close();
    }
  }
}
