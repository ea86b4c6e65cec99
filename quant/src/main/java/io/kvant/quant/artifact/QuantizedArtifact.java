package io.kvant.quant.artifact;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.kvant.engine.format.ModelFormatException;
import io.kvant.engine.format.gguf.GgufFile;
import io.kvant.engine.format.gguf.GgufReader;
import io.kvant.engine.format.safetensors.SafetensorsDtype;
import io.kvant.engine.format.safetensors.SafetensorsFile;
import io.kvant.engine.format.safetensors.SafetensorsReader;
import io.kvant.engine.format.safetensors.SafetensorsWriter;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.model.Role;
import io.kvant.engine.model.RopeStyle;
import io.kvant.engine.model.TensorNames;
import io.kvant.engine.model.Weight;
import io.kvant.engine.model.WeightLayout;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Fp8Tensor;
import io.kvant.engine.tensor.Int4Tensor;
import io.kvant.engine.tensor.Int8Tensor;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tokenizer.SentencePieceBpeTokenizer;
import io.kvant.engine.tokenizer.Tokenizer;
import io.kvant.quant.encoding.AimetEncodings;
import io.kvant.quant.encoding.TensorEncoding;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A quantized model version folder, as {@code kvant quantize} writes it and the reload agent
 * publishes it ({@code <bucket>/<model>/versions/<version>/}):
 *
 * <ul>
 *   <li>{@code model.safetensors}: every tensor. Full-precision matrices and norm vectors as
 *       F32/F16/BF16; INT8 as {@code I8 [rows, cols]} plus {@code NAME.scale F32 [rows]}; INT4 as
 *       packed {@code U8 [rows, ceil(cols/2)]} plus {@code NAME.scale F32 [rows, groups]} and, when
 *       asymmetric, {@code NAME.zero U8 [rows, groups]}; FP8 as {@code F8_E4M3|F8_E5M2 [rows,
 *       cols]} plus {@code NAME.scale F32 [rows]} (or {@code [1]}); ggml Q4_0/Q8_0 blocks as {@code
 *       U8 [rows, row bytes]}. The header's {@code __metadata__["kvant.layout"]} (JSON) gives each
 *       matrix's kvant dtype, shape and group size.
 *   <li>{@code config.json}: kvant's hyper-parameters ({@code kvant_config: 1}).
 *   <li>{@code tokenizer.kvant.json} (SentencePiece vocabulary taken from a GGUF source) or the
 *       source's {@code tokenizer.json} / {@code tokenizer_config.json} (Hugging Face).
 *   <li>{@code encodings.json} (AIMET 1.0.0), {@code qbom.json}.
 *   <li>{@value KvCalibrationFile#FILE_NAME}, optional: the calibrated KV statistics of the
 *       full-precision source ({@link KvCalibrationFile}), which {@code serve} uses for the
 *       centered FP8/INT8 KV encodings instead of a calibration pass at load. A folder without it
 *       loads as before.
 *   <li>{@code manifest.json}, written last: sizes and sha256 of all the above and of every
 *       safetensors tensor.
 * </ul>
 *
 * <p>{@link #load} verifies the manifest (sizes and digests) before mapping anything; {@link
 * #kvCalibration} reads the KV statistics, only when the manifest lists them.
 */
public final class QuantizedArtifact {
  public static final String WEIGHTS = "model.safetensors";
  public static final String CONFIG = "config.json";
  public static final String TOKENIZER = "tokenizer.kvant.json";
  public static final String ENCODINGS = "encodings.json";
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final ValueLayout.OfFloat FLOAT_LE =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private QuantizedArtifact() {}

  /** Who, what and when of a write. */
  public record Info(
      String model, String version, String parent, String publisher, Instant created) {}

  /**
   * What a quantized version folder holds besides its files' digests.
   *
   * @param model the weights to write (quantized or not), config and tokenizer source
   * @param recipe the recipe's name ({@code w4g128:gptq}, ...)
   * @param encodings AIMET encodings of every quantized tensor, by kvant tensor name
   * @param qbom how each tensor was made
   * @param time when it was quantized
   * @param publisher who quantized it
   */
  public record Contents(
      Model model,
      String recipe,
      Map<String, TensorEncoding> encodings,
      List<QbomEntry> qbom,
      Instant time,
      String publisher) {}

  /**
   * Writes {@code q} into {@code dir} (created if needed; existing files of the same names are
   * replaced) and returns the manifest written.
   */
  public static Manifest write(Contents q, Path dir, Info info) throws IOException {
    return write(q, dir, info, Optional.empty());
  }

  /**
   * As {@link #write(Contents, Path, Info)}, with the KV statistics {@code kv} written to {@value
   * KvCalibrationFile#FILE_NAME} and listed in the manifest (file and tensors) when present. When
   * absent, a {@value KvCalibrationFile#FILE_NAME} left in {@code dir} by an earlier write is
   * deleted, so the folder never holds statistics of other weights.
   */
  public static Manifest write(
      Contents q, Path dir, Info info, Optional<KvCalibrationFile.Contents> kv) throws IOException {
    Files.createDirectories(dir);
    Model m = q.model();
    ModelWeights w = m.weights();
    SafetensorsWriter st = new SafetensorsWriter();
    ObjectNode layout = JSON.createObjectNode();
    for (Map.Entry<String, Weight> e : WeightLayout.of(m.config(), w).named(w).entrySet()) {
      switch (e.getValue()) {
        case Weight.Matrix mx -> addMatrix(st, layout, e.getKey(), mx.tensor());
        case Weight.Vector v ->
            st.add(
                e.getKey(),
                SafetensorsDtype.F32,
                new long[] {v.values().length},
                floats(v.values()));
      }
    }
    layout.put("tied", w.output() == w.embedding());
    st.metadata(QuantizedLayout.KEY, layout.toString());
    st.write(dir.resolve(WEIGHTS));
    Files.writeString(dir.resolve(CONFIG), configJson(m.config()).toString());
    List<String> files = new ArrayList<>(List.of(WEIGHTS, CONFIG));
    files.addAll(writeTokenizer(m, dir));
    Files.writeString(dir.resolve(ENCODINGS), AimetEncodings.write(q.encodings()));
    Qbom qbom =
        new Qbom(
            info.model(),
            info.version(),
            Optional.ofNullable(info.parent()),
            q.recipe(),
            q.publisher(),
            Optional.empty(),
            q.time(),
            q.qbom());
    Files.writeString(dir.resolve(Qbom.FILE_NAME), qbom.toJson());
    files.add(ENCODINGS);
    files.add(Qbom.FILE_NAME);
    Path kvFile = dir.resolve(KvCalibrationFile.FILE_NAME);
    if (kv.isPresent()) {
      KvCalibrationFile.write(kvFile, kv.get().scales(), kv.get().source());
      files.add(KvCalibrationFile.FILE_NAME);
    } else {
      Files.deleteIfExists(kvFile);
    }
    List<Manifest.FileEntry> fileEntries = new ArrayList<>();
    for (String f : files) {
      Path p = dir.resolve(f);
      fileEntries.add(new Manifest.FileEntry(f, Files.size(p), Digests.sha256(p)));
    }
    List<Manifest.TensorEntry> tensors = new ArrayList<>();
    for (String f : files) {
      if (!f.endsWith(".safetensors")) {
        continue;
      }
      try (SafetensorsFile sf = SafetensorsReader.open(dir.resolve(f))) {
        for (var t : sf.tensors()) {
          tensors.add(
              new Manifest.TensorEntry(
                  t.name(),
                  f,
                  t.dtype().name(),
                  java.util.Arrays.stream(t.shape()).boxed().toList(),
                  Digests.sha256(sf.tensorData(t.name()))));
        }
      }
    }
    // Recipe "none": the codes are served as they are; the recipe that made them is in the QBOM.
    Manifest manifest =
        new Manifest(
            info.model(),
            info.version(),
            Optional.ofNullable(info.parent()),
            info.created(),
            info.publisher(),
            "none",
            fileEntries,
            tensors,
            Optional.of(ENCODINGS),
            Optional.empty());
    manifest.write(dir);
    return manifest;
  }

  /** Whether {@code dir} looks like a quantized artifact (has a manifest and kvant config). */
  public static boolean isArtifact(Path dir) {
    return Files.isRegularFile(dir.resolve(Manifest.FILE_NAME))
        && Files.isRegularFile(dir.resolve(CONFIG));
  }

  /**
   * Loads a folder written by {@link #write}: verifies the manifest, maps the tensors (zero copy
   * for codes and full-precision matrices) and reads config and tokenizer.
   *
   * @throws ArtifactException if the manifest is missing or does not match the files
   * @throws ModelFormatException if the content is malformed
   */
  public static Model load(Path dir) throws IOException {
    Manifest manifest = Manifest.read(dir);
    manifest.verify(dir);
    LlamaConfig cfg = readConfig(dir.resolve(CONFIG));
    SafetensorsFile sf = SafetensorsReader.open(dir.resolve(WEIGHTS));
    try {
      QuantizedLayout layout =
          QuantizedLayout.of(sf)
              .orElseThrow(() -> new ModelFormatException(sf.path(), "no kvant.layout metadata"));
      boolean biases = sf.contains(TensorNames.bias(0, Role.Q));
      WeightLayout slots = new WeightLayout(cfg, layout.tied(), biases);
      Map<String, Weight> named = new LinkedHashMap<>();
      for (WeightLayout.Slot slot : slots.all().values()) {
        named.put(
            slot.name(),
            slot.matrix()
                ? new Weight.Matrix(layout.matrix(slot.name(), false))
                : new Weight.Vector(layout.vector(slot.name(), (int) slot.shape()[0])));
      }
      ModelWeights weights = slots.assemble(named);
      Tokenizer tok = readTokenizer(dir);
      return new Model(dir, "kvant-quantized", cfg, weights, tok, sf);
    } catch (IOException | RuntimeException e) {
      sf.close();
      if (e instanceof IllegalArgumentException iae) {
        throw new ModelFormatException(dir, iae.getMessage(), iae);
      }
      throw e;
    }
  }

  /**
   * The KV statistics of the version folder {@code dir} for a model of {@code config}: empty when
   * the folder has no {@value KvCalibrationFile#FILE_NAME}. The file is read only when {@code
   * manifest.json} lists it and its size and sha256 match the listing.
   *
   * @throws ArtifactException if the manifest is missing or malformed, or the file is present but
   *     not listed, or does not match its listing (the message names the folder and the file)
   * @throws ModelFormatException if the file's content is malformed or does not fit {@code config}
   *     (the message starts with the file's name)
   */
  public static Optional<KvCalibrationFile.Contents> kvCalibration(Path dir, LlamaConfig config)
      throws IOException {
    Path file = dir.resolve(KvCalibrationFile.FILE_NAME);
    Manifest manifest = Manifest.read(dir);
    Optional<Manifest.FileEntry> listed = manifest.file(KvCalibrationFile.FILE_NAME);
    if (listed.isEmpty()) {
      if (Files.exists(file)) {
        // Unlisted means unverified: its bytes could be anyone's, so it is neither used nor
        // silently skipped.
        throw new ArtifactException(
            dir
                + ": "
                + KvCalibrationFile.FILE_NAME
                + " is not listed in "
                + Manifest.FILE_NAME
                + " (remove it, or write the folder again with kvant quantize)");
      }
      return Optional.empty();
    }
    Manifest.verify(dir, listed.get());
    return Optional.of(KvCalibrationFile.read(file, config));
  }

  // ------------------------------------------------------------------ writing

  private static void addMatrix(SafetensorsWriter st, ObjectNode layout, String name, Tensor t) {
    ObjectNode o = layout.putObject(name);
    o.put("dtype", t.dtype().name());
    o.put("rows", t.rows());
    o.put("cols", t.cols());
    long[] shape = {t.rows(), t.cols()};
    switch (t) {
      case Int8Tensor i8 -> {
        st.add(name, SafetensorsDtype.I8, shape, i8.data());
        st.add(name + ".scale", SafetensorsDtype.F32, new long[] {t.rows()}, floats(i8.scales()));
      }
      case Int4Tensor i4 -> {
        o.put("group_size", i4.groupSize());
        long[] gshape = {t.rows(), i4.groupsPerRow()};
        st.add(name, SafetensorsDtype.U8, new long[] {t.rows(), (t.cols() + 1) / 2}, i4.data());
        st.add(name + ".scale", SafetensorsDtype.F32, gshape, floats(i4.scales()));
        if (i4.asymmetric()) {
          st.add(name + ".zero", SafetensorsDtype.U8, gshape, i4.zeroPoints());
        }
      }
      case Fp8Tensor f8 -> {
        SafetensorsDtype d =
            t.dtype() == DType.F8_E4M3 ? SafetensorsDtype.F8_E4M3 : SafetensorsDtype.F8_E5M2;
        st.add(name, d, shape, f8.data());
        float[] s = f8.perTensor() ? new float[] {f8.scales()[0]} : f8.scales();
        st.add(name + ".scale", SafetensorsDtype.F32, new long[] {s.length}, floats(s));
      }
      default -> {
        switch (t.dtype()) {
          case F32 -> st.add(name, SafetensorsDtype.F32, shape, t.data());
          case F16 -> st.add(name, SafetensorsDtype.F16, shape, t.data());
          case BF16 -> st.add(name, SafetensorsDtype.BF16, shape, t.data());
          default ->
              st.add(
                  name,
                  SafetensorsDtype.U8,
                  new long[] {t.rows(), t.byteSize() / t.rows()},
                  t.data());
        }
      }
    }
  }

  private static byte[] floats(float[] v) {
    MemorySegment seg = MemorySegment.ofArray(new byte[v.length * 4]);
    MemorySegment.copy(v, 0, seg, FLOAT_LE, 0, v.length);
    return seg.toArray(ValueLayout.JAVA_BYTE);
  }

  private static ObjectNode configJson(LlamaConfig c) {
    ObjectNode o = JSON.createObjectNode();
    o.put("kvant_config", 1);
    o.put("dim", c.dim());
    o.put("hidden_dim", c.hiddenDim());
    o.put("layers", c.layers());
    o.put("heads", c.heads());
    o.put("kv_heads", c.kvHeads());
    o.put("vocab_size", c.vocabSize());
    o.put("context_length", c.contextLength());
    o.put("rope_theta", c.ropeTheta());
    o.put("norm_eps", c.normEps());
    o.put("rope_style", c.ropeStyle().name());
    return o;
  }

  /** Writes the tokenizer files and returns their names. */
  private static List<String> writeTokenizer(Model m, Path dir) throws IOException {
    switch (m.format()) {
      case "gguf" -> {
        try (GgufFile f = GgufReader.open(m.source())) {
          ObjectNode o = JSON.createObjectNode();
          o.put("kind", "sentencepiece");
          ArrayNode tokens = o.putArray("tokens");
          f.getStringArray("tokenizer.ggml.tokens").forEach(tokens::add);
          if (f.metadata().contains("tokenizer.ggml.scores")) {
            ArrayNode s = o.putArray("scores");
            for (float v : f.getFloatArray("tokenizer.ggml.scores")) {
              s.add(v);
            }
          }
          if (f.metadata().contains("tokenizer.ggml.token_type")) {
            ArrayNode s = o.putArray("token_type");
            for (int v : f.metadata().getIntArray("tokenizer.ggml.token_type")) {
              s.add(v);
            }
          }
          o.put("bos", id(f, "tokenizer.ggml.bos_token_id"));
          o.put("eos", id(f, "tokenizer.ggml.eos_token_id"));
          o.put("unk", id(f, "tokenizer.ggml.unknown_token_id"));
          o.put("add_space_prefix", f.getBoolean("tokenizer.ggml.add_space_prefix", true));
          Files.writeString(dir.resolve(TOKENIZER), o.toString(), StandardCharsets.UTF_8);
          return List.of(TOKENIZER);
        }
      }
      case "safetensors", "kvant-quantized" -> {
        List<String> out = new ArrayList<>();
        for (String n : List.of("tokenizer.json", "tokenizer_config.json", TOKENIZER)) {
          Path src = m.source().resolve(n);
          if (Files.isRegularFile(src)) {
            Files.copy(src, dir.resolve(n), StandardCopyOption.REPLACE_EXISTING);
            out.add(n);
          }
        }
        return out;
      }
      default ->
          throw new IllegalArgumentException(
              "writing a quantized artifact from a "
                  + m.format()
                  + " model is not supported (GGUF and Hugging Face are)");
    }
  }

  private static int id(GgufFile f, String key) throws IOException {
    if (!f.metadata().contains(key)) {
      return -1;
    }
    long v = f.getLong(key);
    return v < 0 || v >= Integer.MAX_VALUE ? -1 : (int) v;
  }

  // ------------------------------------------------------------------ reading

  private static LlamaConfig readConfig(Path file) throws IOException {
    JsonNode c = JSON.readTree(file.toFile());
    if (c == null || c.path("kvant_config").asInt() != 1) {
      throw new ModelFormatException(file, "not a kvant config (kvant_config: 1)");
    }
    try {
      return new LlamaConfig(
          c.path("dim").asInt(),
          c.path("hidden_dim").asInt(),
          c.path("layers").asInt(),
          c.path("heads").asInt(),
          c.path("kv_heads").asInt(),
          c.path("vocab_size").asInt(),
          c.path("context_length").asInt(),
          (float) c.path("rope_theta").asDouble(),
          (float) c.path("norm_eps").asDouble(),
          RopeStyle.valueOf(c.path("rope_style").asText()));
    } catch (IllegalArgumentException e) {
      throw new ModelFormatException(file, "bad hyper-parameters: " + e.getMessage(), e);
    }
  }

  private static Tokenizer readTokenizer(Path dir) throws IOException {
    Path kv = dir.resolve(TOKENIZER);
    if (Files.isRegularFile(kv)) {
      JsonNode o = JSON.readTree(kv.toFile());
      List<String> tokens = new ArrayList<>();
      o.path("tokens").forEach(t -> tokens.add(t.asText()));
      float[] scores = null;
      if (o.has("scores")) {
        scores = new float[o.get("scores").size()];
        for (int i = 0; i < scores.length; i++) {
          scores[i] = (float) o.get("scores").get(i).asDouble();
        }
      }
      int[] types = null;
      if (o.has("token_type")) {
        types = new int[o.get("token_type").size()];
        for (int i = 0; i < types.length; i++) {
          types[i] = o.get("token_type").get(i).asInt();
        }
      }
      return SentencePieceBpeTokenizer.fromGguf(
          tokens.toArray(String[]::new),
          scores,
          types,
          o.path("bos").asInt(-1),
          o.path("eos").asInt(-1),
          o.path("unk").asInt(-1),
          o.path("add_space_prefix").asBoolean(true));
    }
    return io.kvant.engine.model.HuggingFaceTokenizers.load(dir);
  }
}
