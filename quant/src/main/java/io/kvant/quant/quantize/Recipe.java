package io.kvant.quant.quantize;

import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kvant.engine.model.Role;
import io.kvant.quant.encoding.WeightFormat;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A per-role choice of weight storage: which {@link QuantSpec} each tensor {@link Role} gets. Roles
 * not listed stay in full precision; norms are always full precision.
 *
 * <p>Built in ({@link #builtin}): {@code w8} (all linear layers and lm_head INT8 per-channel),
 * {@code w4g128} / {@code w4g32} (linear layers INT4 symmetric group 128 / 32 with MSE clipping,
 * lm_head INT8), {@code fp8} (linear layers and lm_head FP8 E4M3 per-channel), {@code mixed} (q, k,
 * v, o, gate, up INT4 group 128; down INT8; lm_head INT8), {@code q4_0} (every linear layer and
 * lm_head ggml Q4_0, like llama.cpp's Q4_0 files), {@code q8_0} (the same with ggml Q8_0) and
 * {@code f32} (nothing quantized). ggml formats need widths that are multiples of 32; other
 * matrices (e.g. stories260K's down, width 172) stay full precision. Embeddings stay in full
 * precision in all of them. The GPTQ-calibrated ones that meet the quality targets are {@link
 * #CALIBRATED}.
 *
 * <p>{@link #resolve} also accepts {@code NAME:METHOD} (e.g. {@code w4g128:awq}) to switch the
 * method of every quantized role ({@code w8:smoothquant}: INT8 per-channel with SmoothQuant
 * factors, for the GPU's W8A8 products; {@link Method#SMOOTHQUANT} takes INT8 and FP8 E4M3 roles
 * only), and a path to a JSON file:
 *
 * <pre>{@code
 * {"name": "my-recipe", "extends": "w4g128",
 *  "roles": {"down": {"type": "int8", "method": "mse"},
 *            "q": {"type": "int4", "group_size": 64, "symmetric": false, "method": "awq"},
 *            "lm_head": {"type": "f32"}}}
 * }</pre>
 */
public record Recipe(String name, Map<Role, QuantSpec> roles) {
  /** Names accepted by {@link #builtin}. */
  public static final List<String> BUILTIN =
      List.of("w8", "w4g128", "w4g32", "fp8", "mixed", "q4_0", "q8_0", "f32");

  /**
   * Named recipes that calibrate whole layers on activations (GPTQ), also accepted by {@link
   * #builtin}: {@code fp8-gptq} (linear layers FP8 E4M3 per-channel, lm_head INT8 per-channel),
   * {@code w4g32-asym-gptq} and {@code w4g128-asym-gptq} (linear layers INT4 asymmetric group 32 /
   * 128, lm_head INT8 per-channel), every role by GPTQ without act-order (measured worse here). The
   * formats are the ones the built-ins write; the best per format in perf/RESULTS.md ("Quantization
   * recipes on the three real models"). Not in {@link #BUILTIN}: re-quantizing one tensor alone
   * (the reload agent) has no layer activations for them.
   */
  public static final List<String> CALIBRATED =
      List.of("fp8-gptq", "w4g32-asym-gptq", "w4g128-asym-gptq");

  private static final List<Role> LINEAR =
      List.of(Role.Q, Role.K, Role.V, Role.O, Role.GATE, Role.UP, Role.DOWN);

  /** Roles that read the same input (AWQ and SmoothQuant scale it for all of them). */
  private static final List<List<Role>> SHARED_INPUTS =
      List.of(List.of(Role.Q, Role.K, Role.V), List.of(Role.GATE, Role.UP));

  public Recipe {
    Objects.requireNonNull(name, "name");
    EnumMap<Role, QuantSpec> m = new EnumMap<>(Role.class);
    for (Role r : Role.values()) {
      m.put(r, QuantSpec.FULL);
    }
    m.putAll(roles);
    if (m.get(Role.NORMS).format() != WeightFormat.FULL) {
      throw new IllegalArgumentException("norms are always kept in full precision");
    }
    for (List<Role> group : SHARED_INPUTS) {
      if (group.stream().anyMatch(r -> m.get(r).method() == Method.AWQ)
          && group.stream().anyMatch(r -> m.get(r).method() == Method.SMOOTHQUANT)) {
        // One factor per input channel is folded into what precedes the group: one method sets it.
        throw new IllegalArgumentException(
            group.stream().map(Role::jsonName).toList()
                + " share an input: awq and smoothquant cannot both scale it");
      }
    }
    roles = java.util.Collections.unmodifiableMap(m);
  }

  /** The spec of {@code role} (FULL when the recipe does not quantize it). */
  public QuantSpec spec(Role role) {
    return roles.get(role);
  }

  /** A built-in recipe by name. */
  public static Recipe builtin(String name) {
    Map<Role, QuantSpec> m = new EnumMap<>(Role.class);
    switch (name) {
      case "w8" -> {
        LINEAR.forEach(r -> m.put(r, QuantSpec.int8(Method.MINMAX)));
        m.put(Role.LM_HEAD, QuantSpec.int8(Method.MINMAX));
      }
      case "w4g128", "w4g32" -> {
        int g = name.equals("w4g128") ? 128 : 32;
        LINEAR.forEach(r -> m.put(r, QuantSpec.int4(g, true, Method.MSE)));
        m.put(Role.LM_HEAD, QuantSpec.int8(Method.MINMAX));
      }
      case "fp8" -> {
        LINEAR.forEach(r -> m.put(r, QuantSpec.fp8(WeightFormat.FP8_E4M3, false, Method.MINMAX)));
        m.put(Role.LM_HEAD, QuantSpec.fp8(WeightFormat.FP8_E4M3, false, Method.MINMAX));
      }
      case "mixed" -> {
        for (Role r : List.of(Role.Q, Role.K, Role.V, Role.O, Role.GATE, Role.UP)) {
          m.put(r, QuantSpec.int4(128, true, Method.MSE));
        }
        m.put(Role.DOWN, QuantSpec.int8(Method.MINMAX));
        m.put(Role.LM_HEAD, QuantSpec.int8(Method.MINMAX));
      }
      case "q4_0" -> {
        LINEAR.forEach(r -> m.put(r, QuantSpec.of(WeightFormat.Q4_0)));
        m.put(Role.LM_HEAD, QuantSpec.of(WeightFormat.Q4_0));
      }
      case "q8_0" -> {
        LINEAR.forEach(r -> m.put(r, QuantSpec.of(WeightFormat.Q8_0)));
        m.put(Role.LM_HEAD, QuantSpec.of(WeightFormat.Q8_0));
      }
      case "fp8-gptq" -> {
        LINEAR.forEach(r -> m.put(r, QuantSpec.fp8(WeightFormat.FP8_E4M3, false, Method.GPTQ)));
        m.put(Role.LM_HEAD, QuantSpec.int8(Method.GPTQ));
      }
      case "w4g32-asym-gptq", "w4g128-asym-gptq" -> {
        int g = name.equals("w4g128-asym-gptq") ? 128 : 32;
        LINEAR.forEach(r -> m.put(r, QuantSpec.int4(g, false, Method.GPTQ)));
        m.put(Role.LM_HEAD, QuantSpec.int8(Method.GPTQ));
      }
      case "f32" -> {}
      default ->
          throw new IllegalArgumentException(
              "unknown recipe '"
                  + name
                  + "' (built in: "
                  + String.join(", ", BUILTIN)
                  + ", "
                  + String.join(", ", CALIBRATED)
                  + ")");
    }
    return new Recipe(name, m);
  }

  /**
   * A built-in name, {@code NAME:METHOD}, or a JSON recipe file.
   *
   * @throws IllegalArgumentException for an unknown name or a malformed file (the message says what
   *     is wrong)
   */
  public static Recipe resolve(String nameOrFile) throws IOException {
    Path p = Path.of(nameOrFile);
    if (nameOrFile.endsWith(".json") || Files.isRegularFile(p)) {
      return load(p);
    }
    int colon = nameOrFile.indexOf(':');
    if (colon > 0) {
      Method m = Method.parse(nameOrFile.substring(colon + 1));
      return builtin(nameOrFile.substring(0, colon)).withMethod(m).renamed(nameOrFile);
    }
    return builtin(nameOrFile);
  }

  /** Reads a JSON recipe file (format in the class comment). */
  public static Recipe load(Path file) throws IOException {
    String text = Files.readString(file);
    try {
      return parse(text);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(file + ": " + e.getMessage(), e);
    }
  }

  private static final ObjectMapper JSON =
      JsonMapper.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();

  /** Parses a JSON recipe. */
  public static Recipe parse(String json) {
    JsonNode root;
    try {
      root = JSON.readTree(json);
    } catch (IOException e) {
      throw new IllegalArgumentException("recipe is not valid JSON: " + e.getMessage(), e);
    }
    if (root == null || !root.isObject()) {
      throw new IllegalArgumentException("recipe must be a JSON object");
    }
    String name = root.path("name").asText("custom");
    Map<Role, QuantSpec> m = new EnumMap<>(Role.class);
    if (root.has("extends")) {
      m.putAll(builtin(root.get("extends").asText()).roles());
    }
    JsonNode roles = root.path("roles");
    if (!roles.isMissingNode() && !roles.isObject()) {
      throw new IllegalArgumentException("'roles' must be an object");
    }
    for (Iterator<Map.Entry<String, JsonNode>> it = roles.properties().iterator(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      Role role = Role.parse(e.getKey());
      m.put(role, specOf(e.getKey(), e.getValue()));
    }
    return new Recipe(name, m);
  }

  private static QuantSpec specOf(String role, JsonNode n) {
    if (!n.isObject()) {
      throw new IllegalArgumentException("role '" + role + "' must map to an object");
    }
    WeightFormat f = WeightFormat.parse(n.path("type").asText("f32"));
    Method method = Method.parse(n.path("method").asText("minmax"));
    try {
      return new QuantSpec(
          f,
          n.path("group_size").asInt(f == WeightFormat.INT4 ? 128 : 0),
          n.path("symmetric").asBoolean(true),
          method,
          n.path("percentile").asDouble(99.9),
          n.path("per_tensor").asBoolean(false));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("role '" + role + "': " + e.getMessage(), e);
    }
  }

  /** This recipe with {@code method} for every quantized INT8/INT4/FP8 role. */
  public Recipe withMethod(Method method) {
    Map<Role, QuantSpec> m = new EnumMap<>(Role.class);
    roles.forEach(
        (r, s) -> {
          try {
            m.put(
                r,
                switch (s.format()) {
                  case INT8, INT4, FP8_E4M3, FP8_E5M2 -> s.withMethod(method);
                  default -> s;
                });
          } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(
                "recipe '" + name + "', role '" + r.jsonName() + "': " + e.getMessage(), e);
          }
        });
    return new Recipe(name, m);
  }

  /** The same roles under another name. */
  public Recipe renamed(String newName) {
    return new Recipe(newName, roles);
  }

  /**
   * Whether any role uses {@link Method#AWQ}, {@link Method#GPTQ} or {@link Method#SMOOTHQUANT}
   * (calibration activations are then needed).
   */
  public boolean needsActivations() {
    return roles.values().stream()
        .anyMatch(
            s ->
                s.format() != WeightFormat.FULL
                    && (s.method() == Method.AWQ
                        || s.method() == Method.GPTQ
                        || s.method() == Method.SMOOTHQUANT));
  }

  /** This recipe as JSON (the file format {@link #parse} reads). */
  public ObjectNode toJson() {
    ObjectNode root = JSON.createObjectNode();
    root.put("name", name);
    ObjectNode r = root.putObject("roles");
    roles.forEach(
        (role, s) -> {
          ObjectNode o = r.putObject(role.jsonName());
          o.put("type", s.format().jsonName());
          if (s.format() == WeightFormat.INT4) {
            o.put("group_size", s.groupSize());
            o.put("symmetric", s.symmetric());
          }
          if (s.format() != WeightFormat.FULL) {
            o.put("method", s.method().jsonName());
          }
          if (s.format() != WeightFormat.FULL) {
            o.put("percentile", s.percentile());
          }
          if (s.perTensor()) {
            o.put("per_tensor", true);
          }
        });
    return root;
  }
}
