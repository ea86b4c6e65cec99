package io.kvant.quant.encoding;

import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kvant.quant.encoding.TensorEncoding.Granularity;
import java.io.IOException;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * Reads and writes AIMET {@code encodings.json} files (parameter encodings only).
 *
 * <p>Written: AIMET format 1.0.0, {@code {"version": "1.0.0", "param_encodings": [{"name", "dtype":
 * "INT"|"FLOAT", "enc_type": "PER_TENSOR"|"PER_CHANNEL"|"PER_BLOCK", "is_sym", "bw", "scale": [],
 * "offset": [], "block_size"}], "activation_encodings": [], "quantizer_args": {}}}, plus for FP8
 * the extra key {@code "fp8_format": "E4M3"|"E5M2"} (AIMET has no scaled-FP8 parameter encoding).
 * kvant's per-block INT4 may end a row with a partial block when the width is not a multiple of
 * {@code block_size}; scales are row-major {@code [rows][ceil(cols/block_size)]}.
 *
 * <p>Read: 1.0.0 as above, and the older 0.6.1 layout {@code {"version": "0.6.1",
 * "param_encodings": {name: [{"bitwidth", "dtype": "int", "is_symmetric", "max", "min", "offset",
 * "scale"}, ...]}}}, one entry per output channel (or one for the tensor). Parameter names may be
 * kvant's, Hugging Face/PyTorch's or an ONNX export's ({@link ParamNames}); the result is keyed by
 * kvant's names. A name that maps to no weight the caller's {@link Shapes} knows is rejected,
 * naming it.
 *
 * <p>Validation (every problem is an {@link IllegalArgumentException} naming the tensor): JSON
 * syntax, duplicate keys, unknown version, dtype or enc_type, bit widths other than 4 and 8 for INT
 * (8 for FLOAT), non-numeric / non-finite / negative scales, non-integral or out-of-range offsets,
 * and unit counts that do not match the tensor's shape.
 */
public final class AimetEncodings {
  private AimetEncodings() {}

  /** Shapes of the tensors encodings may refer to. */
  @FunctionalInterface
  public interface Shapes {
    /**
     * {@code {rows, cols}} of tensor {@code name}, or {@code null} when there is no such tensor.
     */
    int[] shape(String name);
  }

  private static final ObjectMapper JSON =
      JsonMapper.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();

  /** Largest file accepted, so a hostile file cannot exhaust the heap. */
  public static final int MAX_CHARS = 256 << 20;

  /** Writes {@code encodings} in AIMET 1.0.0 format, sorted by name. */
  public static String write(Map<String, TensorEncoding> encodings) {
    ObjectNode root = JSON.createObjectNode();
    root.put("version", "1.0.0");
    ArrayNode params = root.putArray("param_encodings");
    for (TensorEncoding e : new TreeMap<>(encodings).values()) {
      ObjectNode o = params.addObject();
      o.put("name", e.name());
      boolean fp = e.format() == WeightFormat.FP8_E4M3 || e.format() == WeightFormat.FP8_E5M2;
      o.put("dtype", fp ? "FLOAT" : "INT");
      o.put("enc_type", e.granularity().name());
      o.put("is_sym", e.symmetric());
      o.put("bw", e.bitwidth());
      if (e.granularity() == Granularity.PER_BLOCK) {
        o.put("block_size", e.blockSize());
      }
      if (fp) {
        o.put("fp8_format", e.format() == WeightFormat.FP8_E4M3 ? "E4M3" : "E5M2");
      }
      ArrayNode s = o.putArray("scale");
      for (float v : e.scale()) {
        s.add(v);
      }
      ArrayNode off = o.putArray("offset");
      for (int v : e.offset()) {
        off.add(v);
      }
    }
    root.putArray("activation_encodings");
    root.putObject("quantizer_args");
    try {
      return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * Parses an encodings file (1.0.0 or 0.6.1).
   *
   * @throws IllegalArgumentException with a message naming the problem
   */
  public static Map<String, TensorEncoding> read(String json, Shapes shapes) {
    if (json.length() > MAX_CHARS) {
      throw new IllegalArgumentException("encodings file is larger than " + MAX_CHARS + " chars");
    }
    JsonNode root;
    try {
      root = JSON.readTree(json);
    } catch (IOException e) {
      throw new IllegalArgumentException("encodings are not valid JSON: " + e.getMessage(), e);
    }
    if (root == null || !root.isObject()) {
      throw new IllegalArgumentException("encodings must be a JSON object");
    }
    JsonNode params = root.get("param_encodings");
    if (params == null) {
      throw new IllegalArgumentException("encodings have no 'param_encodings'");
    }
    String version = root.path("version").asText(params.isArray() ? "1.0.0" : "0.6.1");
    Map<String, TensorEncoding> out = new LinkedHashMap<>();
    if (params.isArray()) {
      if (!version.startsWith("1.")) {
        throw new IllegalArgumentException(
            "encodings version "
                + version
                + " with a list of param_encodings is not supported (1.0.0 is)");
      }
      for (JsonNode p : params) {
        TensorEncoding e = readV1(p, shapes);
        if (out.put(e.name(), e) != null) {
          throw new IllegalArgumentException("duplicate encoding for '" + e.name() + "'");
        }
      }
    } else if (params.isObject()) {
      if (!version.startsWith("0.")) {
        throw new IllegalArgumentException(
            "encodings version "
                + version
                + " with a map of param_encodings is not supported (0.6.1 is)");
      }
      for (Iterator<Map.Entry<String, JsonNode>> it = params.properties().iterator();
          it.hasNext(); ) {
        Map.Entry<String, JsonNode> en = it.next();
        TensorEncoding e = readV0(en.getKey(), en.getValue(), shapes);
        if (out.put(e.name(), e) != null) {
          throw new IllegalArgumentException(
              "duplicate encoding for '" + e.name() + "' ('" + en.getKey() + "')");
        }
      }
    } else {
      throw new IllegalArgumentException(
          "'param_encodings' must be a list (1.0.0) or an object (0.6.1)");
    }
    return out;
  }

  /** kvant's name for an exported parameter name ({@link ParamNames}), checked against shapes. */
  private static String kvantName(String exported, Shapes shapes) {
    if (shapes.shape(exported) != null) {
      return exported;
    }
    String name =
        ParamNames.toKvant(exported)
            .orElseThrow(
                () ->
                    new IllegalArgumentException(
                        "encoding for unknown tensor '"
                            + exported
                            + "': not a kvant, Hugging Face/PyTorch or ONNX weight name"));
    if (shapes.shape(name) == null) {
      throw new IllegalArgumentException(
          "encoding for unknown tensor '"
              + exported
              + "'"
              + (name.equals(exported) ? "" : " (kvant name " + name + ")")
              + ": the model has no such quantizable weight");
    }
    return name;
  }

  private static TensorEncoding readV1(JsonNode p, Shapes shapes) {
    if (!p.isObject() || !p.path("name").isTextual()) {
      throw new IllegalArgumentException("each param encoding needs a string 'name'");
    }
    String name = kvantName(p.get("name").asText(), shapes);
    int[] shape = shapes.shape(name);
    String dtype = text(name, p, "dtype");
    int bw = integer(name, p, "bw");
    boolean sym = p.path("is_sym").asBoolean(false);
    String encType = text(name, p, "enc_type");
    Granularity g;
    try {
      g = Granularity.valueOf(encType);
    } catch (IllegalArgumentException e) {
      throw bad(name, "unknown enc_type '" + encType + "' (PER_TENSOR, PER_CHANNEL, PER_BLOCK)");
    }
    int block = g == Granularity.PER_BLOCK ? integer(name, p, "block_size") : 0;
    WeightFormat f = format(name, dtype, bw, p.path("fp8_format").asText("E4M3"));
    float[] scale = floats(name, p.get("scale"), "scale");
    int[] offset = p.has("offset") ? ints(name, p.get("offset")) : new int[scale.length];
    return new TensorEncoding(name, f, sym, g, block, shape[0], shape[1], scale, offset);
  }

  private static TensorEncoding readV0(String exported, JsonNode list, Shapes shapes) {
    String name = kvantName(exported, shapes);
    int[] shape = shapes.shape(name);
    if (!list.isArray() || list.isEmpty()) {
      throw bad(name, "0.6.1 encodings must be a non-empty list of per-channel entries");
    }
    int n = list.size();
    Granularity g;
    if (n == 1) {
      g = Granularity.PER_TENSOR;
    } else if (n == shape[0]) {
      g = Granularity.PER_CHANNEL;
    } else {
      throw bad(
          name, n + " entries for a tensor of " + shape[0] + " channels (0.6.1 has no blocks)");
    }
    float[] scale = new float[n];
    int[] offset = new int[n];
    int bw = -1;
    boolean sym = false;
    String dtype = null;
    for (int i = 0; i < n; i++) {
      JsonNode e = list.get(i);
      if (!e.isObject()) {
        throw bad(name, "entry " + i + " is not an object");
      }
      int b = integer(name, e, "bitwidth");
      String d = e.path("dtype").asText("int").toUpperCase(java.util.Locale.ROOT);
      if (bw != -1 && (b != bw || !d.equals(dtype))) {
        throw bad(name, "entries differ in bitwidth or dtype");
      }
      bw = b;
      dtype = d;
      JsonNode symNode = e.path("is_symmetric");
      sym =
          symNode.isBoolean()
              ? symNode.asBoolean()
              : symNode.asText("False").equalsIgnoreCase("true");
      scale[i] = number(name, e.get("scale"), "scale");
      offset[i] = integral(name, e.get("offset"));
    }
    WeightFormat f = format(name, dtype, bw, "E4M3");
    return new TensorEncoding(name, f, sym, g, 0, shape[0], shape[1], scale, offset);
  }

  private static WeightFormat format(String name, String dtype, int bw, String fp8) {
    switch (dtype.toUpperCase(java.util.Locale.ROOT)) {
      case "INT" -> {
        return switch (bw) {
          case 8 -> WeightFormat.INT8;
          case 4 -> WeightFormat.INT4;
          default -> throw bad(name, "INT bit width " + bw + " is not supported (4, 8)");
        };
      }
      case "FLOAT" -> {
        if (bw != 8) {
          throw bad(name, "FLOAT bit width " + bw + " is not a quantized weight (8 is)");
        }
        return switch (fp8) {
          case "E4M3" -> WeightFormat.FP8_E4M3;
          case "E5M2" -> WeightFormat.FP8_E5M2;
          default -> throw bad(name, "unknown fp8_format '" + fp8 + "'");
        };
      }
      default -> throw bad(name, "unknown dtype '" + dtype + "' (INT, FLOAT)");
    }
  }

  private static String text(String name, JsonNode p, String key) {
    JsonNode v = p.get(key);
    if (v == null || !v.isTextual()) {
      throw bad(name, "needs a string '" + key + "'");
    }
    return v.asText();
  }

  private static int integer(String name, JsonNode p, String key) {
    JsonNode v = p.get(key);
    if (v == null || !v.isIntegralNumber() || !v.canConvertToInt()) {
      throw bad(name, "needs an integer '" + key + "'");
    }
    return v.asInt();
  }

  private static float number(String name, JsonNode v, String what) {
    if (v == null || !v.isNumber()) {
      throw bad(name, what + " must be a number, got " + v);
    }
    double d = v.asDouble();
    if (!Double.isFinite(d) || !Float.isFinite((float) d)) {
      throw bad(name, what + " " + d + " is not finite");
    }
    return (float) d;
  }

  private static int integral(String name, JsonNode v) {
    if (v == null
        || !v.isNumber()
        || v.asDouble() != Math.rint(v.asDouble())
        || Math.abs(v.asDouble()) > 1 << 16) {
      throw bad(name, "offset must be an integer, got " + v);
    }
    return (int) v.asDouble();
  }

  private static float[] floats(String name, JsonNode arr, String what) {
    if (arr == null || !arr.isArray()) {
      throw bad(name, "'" + what + "' must be a list");
    }
    float[] out = new float[arr.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = number(name, arr.get(i), what + "[" + i + "]");
    }
    return out;
  }

  private static int[] ints(String name, JsonNode arr) {
    if (!arr.isArray()) {
      throw bad(name, "'offset' must be a list");
    }
    int[] out = new int[arr.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = integral(name, arr.get(i));
    }
    return out;
  }

  private static IllegalArgumentException bad(String name, String msg) {
    return new IllegalArgumentException("encoding of '" + name + "': " + msg);
  }
}
