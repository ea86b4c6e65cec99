package io.kvant.engine.format.gguf;

import io.kvant.engine.format.ModelFormatException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Optional;

/**
 * One tensor's description from a GGUF file: name, ggml type, dimensions and where its data lies.
 *
 * <p>Dimensions are in GGUF order, {@code ne0} (the innermost, contiguous one) first. The element
 * count is always known and fits a {@code long}. For a type the reader knows ({@link #type()} is
 * present) the byte size is known and the reader has already checked that the data lies inside the
 * file; for an unknown type id, {@link #byteSize()} and data access fail with a {@link
 * ModelFormatException}, so files holding tensors kvant never uses still open.
 */
public final class GgufTensorInfo {
  private final Path file;
  private final String name;
  private final int typeId;
  private final long[] dims;
  private final long elementCount;
  private final long offset;
  private final long byteSize;

  GgufTensorInfo(
      Path file,
      String name,
      int typeId,
      long[] dims,
      long elementCount,
      long offset,
      long byteSize) {
    this.file = file;
    this.name = name;
    this.typeId = typeId;
    this.dims = dims.clone();
    this.elementCount = elementCount;
    this.offset = offset;
    this.byteSize = byteSize;
  }

  /** The tensor's name, e.g. {@code blk.0.attn_q.weight}. */
  public String name() {
    return name;
  }

  /** The ggml type id as stored in the file (also for types this enum does not know). */
  public int typeId() {
    return typeId;
  }

  /** The ggml type, or empty if {@link #typeId()} is not one kvant knows. */
  public Optional<GgmlType> type() {
    return GgmlType.fromId(typeId);
  }

  /** Number of dimensions. */
  public int rank() {
    return dims.length;
  }

  /** A copy of the dimensions, {@code ne0} first. */
  public long[] dims() {
    return dims.clone();
  }

  /** Dimension {@code i} ({@code 0} is {@code ne0}, the innermost). */
  public long dim(int i) {
    return dims[i];
  }

  /** Product of the dimensions (1 for a rank-0 tensor). */
  public long elementCount() {
    return elementCount;
  }

  /** Absolute byte offset of the tensor's data from the start of the file. */
  public long offset() {
    return offset;
  }

  /**
   * Bytes the tensor's data occupies.
   *
   * @throws ModelFormatException if the type id is unknown, so the size cannot be computed
   */
  public long byteSize() throws ModelFormatException {
    if (byteSize < 0) {
      throw new ModelFormatException(
          file,
          "tensor '" + name + "' has unknown ggml type id " + typeId + "; its size is unknown");
    }
    return byteSize;
  }

  @Override
  public String toString() {
    return name
        + " "
        + type().map(Enum::name).orElse("type#" + typeId)
        + Arrays.toString(dims)
        + " @"
        + offset;
  }
}
