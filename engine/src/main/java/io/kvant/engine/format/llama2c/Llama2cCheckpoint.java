package io.kvant.engine.format.llama2c;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * An open llama2.c legacy checkpoint: its {@link Llama2cConfig} and zero-copy float32
 * (little-endian) views of each weight array.
 *
 * <p>Owns a shared {@link Arena} and the read-only mapping of the whole file; {@link #close()}
 * unmaps it, after which returned segments are inaccessible. Asking for {@code wcls} of a model
 * with a shared classifier returns the token embedding. Unknown names are an {@link
 * IllegalArgumentException} and layer indexes out of range an {@link IndexOutOfBoundsException}:
 * those are caller errors, the file has been fully validated at open.
 */
public final class Llama2cCheckpoint implements AutoCloseable {
  private final Path path;
  private final Arena arena;
  private final MemorySegment segment;
  private final Llama2cConfig config;
  private final Map<Llama2cTensor, Long> offsets;
  private final AtomicBoolean closed = new AtomicBoolean();

  Llama2cCheckpoint(
      Path path,
      Arena arena,
      MemorySegment segment,
      Llama2cConfig config,
      EnumMap<Llama2cTensor, Long> offsets) {
    this.path = path;
    this.arena = arena;
    this.segment = segment;
    this.config = config;
    this.offsets = offsets.clone();
  }

  /** The file this was read from. */
  public Path path() {
    return path;
  }

  /** The header's hyper-parameters. */
  public Llama2cConfig config() {
    return config;
  }

  /** The whole mapped file, read-only. */
  public MemorySegment segment() {
    return segment;
  }

  /** Absolute byte offset of the first float of {@code tensor} (of layer 0 if per-layer). */
  public long offset(Llama2cTensor tensor) {
    return offsets.get(
        tensor == Llama2cTensor.WCLS && config.sharedClassifier()
            ? Llama2cTensor.TOKEN_EMBEDDING
            : tensor);
  }

  /** The whole array named {@code name} (all layers for a per-layer tensor). */
  public MemorySegment segment(String name) {
    return segment(tensor(name));
  }

  /** One layer's block of the per-layer array named {@code name}. */
  public MemorySegment segment(String name, int layer) {
    return segment(tensor(name), layer);
  }

  /** The whole array (all layers for a per-layer tensor). */
  public MemorySegment segment(Llama2cTensor tensor) {
    long floats = tensor.floatsPerBlock(config) * (tensor.perLayer() ? config.nLayers() : 1);
    return segment.asSlice(offset(tensor), floats * Float.BYTES);
  }

  /** One layer's block of a per-layer array. */
  public MemorySegment segment(Llama2cTensor tensor, int layer) {
    if (!tensor.perLayer()) {
      throw new IllegalArgumentException(tensor.fileName() + " is not a per-layer tensor");
    }
    if (layer < 0 || layer >= config.nLayers()) {
      throw new IndexOutOfBoundsException(
          "layer " + layer + " of " + tensor.fileName() + ", model has " + config.nLayers());
    }
    long bytes = tensor.floatsPerBlock(config) * Float.BYTES;
    return segment.asSlice(offset(tensor) + layer * bytes, bytes);
  }

  private static Llama2cTensor tensor(String name) {
    return Llama2cTensor.byFileName(name)
        .orElseThrow(() -> new IllegalArgumentException("no llama2.c tensor named '" + name + "'"));
  }

  /** Unmaps the file. Idempotent. */
  @Override
  public void close() {
    if (closed.compareAndSet(false, true)) {
      arena.close();
    }
  }
}
