package io.kvant.quant.artifact;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kvant.engine.format.ModelFormatException;
import io.kvant.engine.format.safetensors.SafetensorsDtype;
import io.kvant.engine.format.safetensors.SafetensorsFile;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.Tensors;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * How the matrices of a version folder's safetensors file are stored: the header's {@code
 * __metadata__["kvant.layout"]} (each matrix's kvant dtype, rows, cols and group size, and whether
 * the head is tied), read once per file. A matrix is its safetensors tensor plus its companions
 * ({@code NAME.scale}, and {@code NAME.zero} for asymmetric INT4). Both {@link QuantizedArtifact}
 * ({@code --model DIR}) and the reload agent (a bucket version) read matrices through it.
 */
public final class QuantizedLayout {
  static final String KEY = "kvant.layout";
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final ValueLayout.OfFloat FLOAT_LE =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private final SafetensorsFile sf;
  private final JsonNode layout;

  private QuantizedLayout(SafetensorsFile sf, JsonNode layout) {
    this.sf = sf;
    this.layout = layout;
  }

  /**
   * The layout of {@code sf}, or empty when its header has none (a plain full-precision file).
   *
   * @throws ModelFormatException if the metadata is not a JSON object
   */
  public static Optional<QuantizedLayout> of(SafetensorsFile sf) throws IOException {
    String text = sf.metadata().get(KEY);
    if (text == null) {
      return Optional.empty();
    }
    JsonNode node;
    try {
      node = JSON.readTree(text);
    } catch (IOException e) {
      throw new ModelFormatException(sf.path(), KEY + " metadata is not JSON: " + e.getMessage());
    }
    if (node == null || !node.isObject()) {
      throw new ModelFormatException(sf.path(), KEY + " metadata is not a JSON object");
    }
    return Optional.of(new QuantizedLayout(sf, node));
  }

  /** Whether the layout describes a matrix called {@code name}. */
  public boolean describes(String name) {
    return layout.get(name) != null && layout.get(name).isObject();
  }

  /** Whether the head is the embedding. */
  public boolean tied() {
    return layout.path("tied").asBoolean();
  }

  /** The companion tensors of matrix {@code name} present in the file (scales, zero points). */
  public List<String> companions(String name) {
    List<String> out = new ArrayList<>();
    for (String c : List.of(name + ".scale", name + ".zero")) {
      if (sf.contains(c)) {
        out.add(c);
      }
    }
    return out;
  }

  /**
   * Matrix {@code name} as the layout describes it.
   *
   * @param heap copy the codes to the heap (the result outlives the file) instead of viewing the
   *     mapped file
   * @throws ModelFormatException if the layout or the stored tensors do not describe a valid matrix
   */
  public Tensor matrix(String name, boolean heap) throws IOException {
    JsonNode o = layout.get(name);
    if (o == null || !o.isObject()) {
      throw new ModelFormatException(sf.path(), "no layout for tensor '" + name + "'");
    }
    DType type;
    try {
      type = DType.valueOf(o.path("dtype").asText());
    } catch (IllegalArgumentException e) {
      throw new ModelFormatException(
          sf.path(), "tensor '" + name + "' has unknown dtype " + o.path("dtype"));
    }
    int rows = o.path("rows").asInt();
    int cols = o.path("cols").asInt();
    if (rows < 1 || cols < 1) {
      throw new ModelFormatException(sf.path(), "tensor '" + name + "': bad rows/cols in layout");
    }
    MemorySegment data = sf.tensorData(name);
    if (heap) {
      data = MemorySegment.ofArray(data.toArray(ValueLayout.JAVA_BYTE));
    }
    try {
      return switch (type) {
        case I8 -> Tensors.int8(rows, cols, data, vector(name + ".scale", rows));
        case I4 -> {
          int g = o.path("group_size").asInt();
          if (g < 2) {
            throw new ModelFormatException(sf.path(), "tensor '" + name + "' needs a group_size");
          }
          int groups = rows * ((cols + g - 1) / g);
          byte[] zeros =
              sf.contains(name + ".zero")
                  ? sf.tensorData(name + ".zero").toArray(ValueLayout.JAVA_BYTE)
                  : null;
          yield Tensors.int4(rows, cols, g, data, vector(name + ".scale", groups), zeros);
        }
        case F8_E4M3, F8_E5M2 -> {
          int n = (int) (sf.tensorData(name + ".scale").byteSize() / 4);
          yield Tensors.fp8(type, rows, cols, data, vector(name + ".scale", n == 1 ? 1 : rows));
        }
        default -> Tensors.of(type, rows, cols, data);
      };
    } catch (IllegalArgumentException | IndexOutOfBoundsException | ArithmeticException e) {
      throw new ModelFormatException(sf.path(), "tensor '" + name + "': " + e.getMessage(), e);
    }
  }

  /** An F32 vector tensor of {@code n} elements, copied to the heap. */
  float[] vector(String name, int n) throws IOException {
    MemorySegment seg = sf.tensorData(name);
    if (sf.tensor(name).dtype() != SafetensorsDtype.F32 || seg.byteSize() != 4L * n) {
      throw new ModelFormatException(sf.path(), "vector '" + name + "' must be F32[" + n + "]");
    }
    return seg.toArray(FLOAT_LE);
  }
}
