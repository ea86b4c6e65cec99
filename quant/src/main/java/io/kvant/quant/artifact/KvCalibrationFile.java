package io.kvant.quant.artifact;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kvant.engine.format.ModelFormatException;
import io.kvant.engine.format.safetensors.SafetensorsDtype;
import io.kvant.engine.format.safetensors.SafetensorsFile;
import io.kvant.engine.format.safetensors.SafetensorsReader;
import io.kvant.engine.format.safetensors.SafetensorsTensor;
import io.kvant.engine.format.safetensors.SafetensorsWriter;
import io.kvant.engine.kv.KeyRope;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.kv.KvScales;
import io.kvant.engine.model.LlamaConfig;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * The codec of {@value #FILE_NAME}, a version folder's calibrated KV statistics ({@link KvScales}
 * with key moments, what {@code centered-mse} and {@code centered-qmse} need), so {@code serve}
 * need not run the calibration pass at every start.
 *
 * <p>Layout: four F32 tensors in {@link KvScales}' element order, {@value #KEY_AMAX} and {@value
 * #VALUE_AMAX} {@code [layers, kvHeads, headSize]} (unrotated), {@value #KEY_MEAN} {@code [layers,
 * kvHeads, headSize]} (the keys before RoPE) and {@value #QUERY_MOMENT} {@code [layers, kvHeads,
 * headSize, headSize]}; and the header's {@code __metadata__[}{@value #METADATA_KEY}{@code ]}, a
 * JSON object: {@code schema} ({@value #SCHEMA}), {@code rope_theta} and {@code rope_style} (the
 * frame the means are in), {@code calibration_text} (a name) and {@code calibration_tokens}.
 *
 * <p>Contract of {@link #read}: any content, however hostile, gives a {@link KvScales} valid for
 * the given model or a {@link ModelFormatException} whose message starts with the file's name and
 * says what is wrong (the safetensors framing is {@link SafetensorsReader}'s, bounds-checked; the
 * values are {@link KvScales}' checks: finite, maxima {@code >= 0}, moment diagonals {@code >= 0}).
 */
public final class KvCalibrationFile {
  /** The file's name in a version folder. */
  public static final String FILE_NAME = "kv_calibration.safetensors";

  /** The header metadata key of the JSON description. */
  public static final String METADATA_KEY = "kvant.kv_calibration";

  /** The schema version written and the only one read. */
  public static final int SCHEMA = 1;

  public static final String KEY_AMAX = "kv.key_amax";
  public static final String VALUE_AMAX = "kv.value_amax";
  public static final String KEY_MEAN = "kv.key_mean";
  public static final String QUERY_MOMENT = "kv.query_moment";

  private static final Set<String> TENSORS = Set.of(KEY_AMAX, VALUE_AMAX, KEY_MEAN, QUERY_MOMENT);

  /** Longest calibration text name kept (a label, not the text). */
  private static final int MAX_TEXT_NAME = 200;

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final ValueLayout.OfFloat FLOAT_LE =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private KvCalibrationFile() {}

  /**
   * What the statistics were measured over.
   *
   * @param text a name of the calibration text (e.g. {@code builtin-calibration-stories}), at most
   *     200 characters
   * @param tokens tokens the pass ran over, {@code >= 0}
   */
  public record Source(String text, long tokens) {
    public Source {
      if (text == null || text.isEmpty() || text.length() > MAX_TEXT_NAME) {
        throw new IllegalArgumentException(
            "calibration text name must have 1 to " + MAX_TEXT_NAME + " characters");
      }
      if (tokens < 0) {
        throw new IllegalArgumentException("calibration tokens must be >= 0, got " + tokens);
      }
    }
  }

  /** A file's statistics and where they came from. */
  public record Contents(KvScales scales, Source source) {}

  /**
   * Writes {@code scales} to {@code file} (replaced if it exists).
   *
   * @throws IllegalArgumentException if {@code scales} has no key moments or its maxima are of
   *     rotated vectors (the file holds what the centered encodings use)
   */
  public static void write(Path file, KvScales scales, Source source) throws IOException {
    if (!scales.hasKeyMoments() || scales.rotated()) {
      throw new IllegalArgumentException(
          FILE_NAME + " holds unrotated maxima with key moments, got " + scales);
    }
    KvGeometry g = scales.geometry();
    long[] perChannel = {g.layers(), g.kvHeads(), g.headSize()};
    long[] perPair = {g.layers(), g.kvHeads(), g.headSize(), g.headSize()};
    ObjectNode meta = JSON.createObjectNode();
    meta.put("schema", SCHEMA);
    meta.put("rope_theta", scales.keyRope().theta());
    meta.put("rope_style", scales.keyRope().style().name());
    meta.put("calibration_text", source.text());
    meta.put("calibration_tokens", source.tokens());
    new SafetensorsWriter()
        .metadata(METADATA_KEY, meta.toString())
        .add(KEY_AMAX, SafetensorsDtype.F32, perChannel, bytes(scales.keyAmax()))
        .add(VALUE_AMAX, SafetensorsDtype.F32, perChannel, bytes(scales.valueAmax()))
        .add(KEY_MEAN, SafetensorsDtype.F32, perChannel, bytes(scales.keyMean()))
        .add(QUERY_MOMENT, SafetensorsDtype.F32, perPair, bytes(scales.queryMoment()))
        .write(file);
  }

  /**
   * Reads {@code file} for a model of {@code config}: its geometry must match the tensors' shapes
   * and its RoPE the metadata's.
   *
   * @throws ModelFormatException naming the file and the problem, for any malformed content
   */
  public static Contents read(Path file, LlamaConfig config) throws IOException {
    try (SafetensorsFile f = SafetensorsReader.open(file)) {
      String metaText = f.metadata().get(METADATA_KEY);
      if (metaText == null) {
        throw new ModelFormatException(file, "no " + METADATA_KEY + " metadata in the header");
      }
      JsonNode meta;
      try {
        meta = JSON.readTree(metaText);
      } catch (JsonProcessingException e) {
        throw new ModelFormatException(file, METADATA_KEY + " is not JSON", e);
      }
      if (meta == null || !meta.isObject()) {
        throw new ModelFormatException(file, METADATA_KEY + " is not a JSON object");
      }
      JsonNode schema = meta.get("schema");
      if (schema == null || !schema.isInt() || schema.intValue() != SCHEMA) {
        throw new ModelFormatException(
            file, METADATA_KEY + ".schema must be " + SCHEMA + ", got " + schema);
      }
      KeyRope rope = rope(file, meta, config);
      Source source = source(file, meta);
      for (String name : f.tensorNames()) {
        if (!TENSORS.contains(name)) {
          throw new ModelFormatException(
              file, "unknown tensor '" + clip(name) + "' (expected " + sorted(TENSORS) + ")");
        }
      }
      KvGeometry g = new KvGeometry(config.layers(), config.kvHeads(), config.headSize());
      long[] perChannel = {g.layers(), g.kvHeads(), g.headSize()};
      long[] perPair = {g.layers(), g.kvHeads(), g.headSize(), g.headSize()};
      float[] keyAmax = floats(f, KEY_AMAX, perChannel);
      float[] valueAmax = floats(f, VALUE_AMAX, perChannel);
      float[] keyMean = floats(f, KEY_MEAN, perChannel);
      float[] queryMoment = floats(f, QUERY_MOMENT, perPair);
      try {
        return new Contents(
            new KvScales(g, false, keyAmax, valueAmax, rope, keyMean, queryMoment), source);
      } catch (IllegalArgumentException e) {
        throw new ModelFormatException(file, e.getMessage(), e);
      }
    }
  }

  private static KeyRope rope(Path file, JsonNode meta, LlamaConfig config)
      throws ModelFormatException {
    JsonNode theta = meta.get("rope_theta");
    JsonNode style = meta.get("rope_style");
    if (theta == null || !theta.isNumber() || style == null || !style.isTextual()) {
      throw new ModelFormatException(
          file, METADATA_KEY + " needs rope_theta (a number) and rope_style (a name)");
    }
    // The means are in the frame of the RoPE the calibration pass applied; under another RoPE
    // they would be rotated wrongly at every position, so a mismatch is refused, not corrected.
    double modelTheta = config.ropeTheta();
    if (theta.doubleValue() != modelTheta || !style.textValue().equals(config.ropeStyle().name())) {
      throw new ModelFormatException(
          file,
          "calibrated under RoPE theta "
              + theta.doubleValue()
              + " "
              + clip(style.textValue())
              + ", the model uses theta "
              + modelTheta
              + " "
              + config.ropeStyle().name());
    }
    return new KeyRope(modelTheta, config.ropeStyle());
  }

  private static Source source(Path file, JsonNode meta) throws ModelFormatException {
    JsonNode text = meta.get("calibration_text");
    JsonNode tokens = meta.get("calibration_tokens");
    if (text == null
        || !text.isTextual()
        || tokens == null
        || !tokens.canConvertToLong()
        || !tokens.isIntegralNumber()) {
      throw new ModelFormatException(
          file,
          METADATA_KEY + " needs calibration_text (a name) and calibration_tokens (an integer)");
    }
    try {
      return new Source(text.textValue(), tokens.longValue());
    } catch (IllegalArgumentException e) {
      throw new ModelFormatException(file, METADATA_KEY + ": " + e.getMessage(), e);
    }
  }

  private static float[] floats(SafetensorsFile f, String name, long[] shape) throws IOException {
    SafetensorsTensor t =
        f.findTensor(name)
            .orElseThrow(() -> new ModelFormatException(f.path(), "missing tensor '" + name + "'"));
    if (t.dtype() != SafetensorsDtype.F32) {
      throw new ModelFormatException(f.path(), name + ": dtype " + t.dtype() + ", expected F32");
    }
    if (!Arrays.equals(t.shape(), shape)) {
      throw new ModelFormatException(
          f.path(),
          name
              + ": shape "
              + Arrays.toString(t.shape())
              + ", the model's KV geometry [layers, kv heads, head size] needs "
              + Arrays.toString(shape));
    }
    MemorySegment data = f.tensorData(name);
    long n = t.elementCount();
    if (data.byteSize() != n * Float.BYTES) {
      throw new ModelFormatException(
          f.path(), name + ": " + data.byteSize() + " bytes, " + n + " floats need " + n * 4);
    }
    float[] out = new float[Math.toIntExact(n)];
    MemorySegment.copy(data, FLOAT_LE, 0, out, 0, out.length);
    return out;
  }

  private static byte[] bytes(float[] v) {
    MemorySegment seg = MemorySegment.ofArray(new byte[v.length * Float.BYTES]);
    MemorySegment.copy(v, 0, seg, FLOAT_LE, 0, v.length);
    return seg.toArray(ValueLayout.JAVA_BYTE);
  }

  private static String clip(String s) {
    return s.length() <= 40 ? s : s.substring(0, 40) + "...";
  }

  private static List<String> sorted(Set<String> s) {
    return s.stream().sorted().toList();
  }
}
