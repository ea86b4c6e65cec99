package io.kvant.engine.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.kvant.engine.format.ModelFormatException;
import io.kvant.engine.format.gguf.GgmlType;
import io.kvant.engine.format.gguf.GgufFile;
import io.kvant.engine.format.gguf.GgufReader;
import io.kvant.engine.format.gguf.GgufTensorInfo;
import io.kvant.engine.format.llama2c.Llama2cCheckpoint;
import io.kvant.engine.format.llama2c.Llama2cConfig;
import io.kvant.engine.format.llama2c.Llama2cReader;
import io.kvant.engine.format.safetensors.SafetensorsModel;
import io.kvant.engine.format.safetensors.SafetensorsTensor;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.Tensors;
import io.kvant.engine.tokenizer.Llama2cTokenizerFile;
import io.kvant.engine.tokenizer.SentencePieceBpeTokenizer;
import io.kvant.engine.tokenizer.Tokenizer;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Loads a Llama-family model from a GGUF file, a llama2.c checkpoint, or a Hugging Face folder
 * (safetensors + {@code config.json} + a tokenizer), mapping the weight matrices without copying
 * them. Norm vectors and biases (a few KB) are copied into float arrays.
 *
 * <p>The format is chosen by what {@code path} is: a folder is Hugging Face, a {@code .gguf} file
 * or one starting with the GGUF magic is GGUF, anything else is tried as a llama2.c checkpoint.
 * Quantized artifact folders are the quant module's ({@code io.kvant.quant.artifact.ModelOpener}),
 * which falls back to this class for everything else.
 */
public final class ModelLoader {
  private ModelLoader() {}

  /**
   * Loads a model.
   *
   * @param tokenizerPath tokenizer file for llama2.c checkpoints (or one that replaces a Hugging
   *     Face folder's own); when empty, {@code tokenizer.bin} or {@code tok<vocab>.bin} beside the
   *     checkpoint
   * @throws ModelFormatException naming the file and the problem
   */
  public static Model load(Path path, Optional<Path> tokenizerPath) throws IOException {
    if (Files.isDirectory(path)) {
      return loadHuggingFace(path, tokenizerPath);
    }
    if (!Files.isRegularFile(path)) {
      throw new ModelFormatException(path, "no such model file or folder");
    }
    if (isGguf(path)) {
      return loadGguf(path);
    }
    return loadLlama2c(path, tokenizerPath);
  }

  private static boolean isGguf(Path path) throws IOException {
    if (path.getFileName().toString().endsWith(".gguf")) {
      return true;
    }
    try (var in = Files.newInputStream(path)) {
      byte[] magic = in.readNBytes(4);
      return magic.length == 4
          && magic[0] == 'G'
          && magic[1] == 'G'
          && magic[2] == 'U'
          && magic[3] == 'F';
    }
  }

  // ---------------------------------------------------------------- GGUF

  static Model loadGguf(Path path) throws IOException {
    GgufFile f = GgufReader.open(path);
    try {
      String arch = f.getString("general.architecture");
      RopeStyle rope =
          switch (arch) {
            case "llama", "mistral" -> RopeStyle.ADJACENT_PAIRS;
            case "qwen2" -> RopeStyle.HALF_SPLIT;
            default ->
                throw new ModelFormatException(
                    path,
                    "architecture '" + arch + "' is not supported (llama, mistral, qwen2 are)");
          };
      int dim = f.getInt(arch + ".embedding_length");
      int heads = f.getInt(arch + ".attention.head_count");
      List<String> tokens = f.getStringArray("tokenizer.ggml.tokens");
      GgufTensorInfo embInfo = f.tensor(TensorNames.EMBEDDING);
      int vocab = (int) embInfo.dim(1);
      LlamaConfig config =
          config(
              path,
              () ->
                  new LlamaConfig(
                      dim,
                      f.getInt(arch + ".feed_forward_length"),
                      f.getInt(arch + ".block_count"),
                      heads,
                      f.getInt(arch + ".attention.head_count_kv", heads),
                      vocab,
                      f.getInt(arch + ".context_length", 2048),
                      f.getFloat(arch + ".rope.freq_base", 10000f),
                      f.getFloat(arch + ".attention.layer_norm_rms_epsilon", 1e-5f),
                      rope));
      Tensor embedding = ggufMatrix(f, TensorNames.EMBEDDING, vocab, dim);
      List<LayerWeights> layers = new ArrayList<>();
      for (int l = 0; l < config.layers(); l++) {
        int kvDim = config.kvDim();
        layers.add(
            new LayerWeights(
                ggufVector(f, TensorNames.attnNorm(l), dim),
                ggufMatrix(f, TensorNames.matrix(l, Role.Q), dim, dim),
                ggufMatrix(f, TensorNames.matrix(l, Role.K), kvDim, dim),
                ggufMatrix(f, TensorNames.matrix(l, Role.V), kvDim, dim),
                ggufMatrix(f, TensorNames.matrix(l, Role.O), dim, dim),
                ggufOptionalVector(f, TensorNames.bias(l, Role.Q), dim),
                ggufOptionalVector(f, TensorNames.bias(l, Role.K), kvDim),
                ggufOptionalVector(f, TensorNames.bias(l, Role.V), kvDim),
                ggufVector(f, TensorNames.ffnNorm(l), dim),
                ggufMatrix(f, TensorNames.matrix(l, Role.GATE), config.hiddenDim(), dim),
                ggufMatrix(f, TensorNames.matrix(l, Role.UP), config.hiddenDim(), dim),
                ggufMatrix(f, TensorNames.matrix(l, Role.DOWN), dim, config.hiddenDim())));
      }
      Tensor output =
          f.findTensor(TensorNames.OUTPUT).isPresent()
              ? ggufMatrix(f, TensorNames.OUTPUT, vocab, dim)
              : embedding;
      ModelWeights weights =
          new ModelWeights(embedding, layers, ggufVector(f, TensorNames.OUTPUT_NORM, dim), output);
      Tokenizer tokenizer = ggufTokenizer(f, tokens);
      return new Model(path, "gguf", config, weights, tokenizer, f);
    } catch (IOException | RuntimeException e) {
      f.close();
      throw e;
    }
  }

  private static Tokenizer ggufTokenizer(GgufFile f, List<String> tokens) throws IOException {
    String model = f.getString("tokenizer.ggml.model");
    if (!model.equals("llama")) {
      throw new ModelFormatException(
          f.path(), "tokenizer.ggml.model '" + model + "' is not supported (llama is)");
    }
    float[] scores =
        f.metadata().contains("tokenizer.ggml.scores")
            ? f.getFloatArray("tokenizer.ggml.scores")
            : null;
    int[] types =
        f.metadata().contains("tokenizer.ggml.token_type")
            ? f.getIntArray("tokenizer.ggml.token_type")
            : null;
    return SentencePieceBpeTokenizer.fromGguf(
        tokens.toArray(String[]::new),
        scores,
        types,
        specialId(f, "tokenizer.ggml.bos_token_id"),
        specialId(f, "tokenizer.ggml.eos_token_id"),
        specialId(f, "tokenizer.ggml.unknown_token_id"),
        f.getBoolean("tokenizer.ggml.add_space_prefix", true));
  }

  private static int specialId(GgufFile f, String key) throws IOException {
    if (!f.metadata().contains(key)) {
      return -1;
    }
    long v = f.getLong(key);
    return v < 0 || v >= Integer.MAX_VALUE ? -1 : (int) v;
  }

  private static Tensor ggufMatrix(GgufFile f, String name, int rows, int cols) throws IOException {
    GgufTensorInfo info = f.tensor(name);
    if (info.rank() != 2 || info.dim(0) != cols || info.dim(1) != rows) {
      throw new ModelFormatException(
          f.path(),
          "tensor '"
              + name
              + "' has dims "
              + java.util.Arrays.toString(info.dims())
              + ", expected ["
              + cols
              + ", "
              + rows
              + "]");
    }
    DType type = dtypeOf(f.path(), name, info.type().orElse(null));
    return tensor(f.path(), name, type, rows, cols, f.tensorData(info));
  }

  private static float[] ggufVector(GgufFile f, String name, int n) throws IOException {
    GgufTensorInfo info = f.tensor(name);
    if (info.elementCount() != n) {
      throw new ModelFormatException(
          f.path(),
          "tensor '" + name + "' has " + info.elementCount() + " elements, expected " + n);
    }
    DType type = dtypeOf(f.path(), name, info.type().orElse(null));
    return vector(f.path(), name, type, n, f.tensorData(info));
  }

  private static float[] ggufOptionalVector(GgufFile f, String name, int n) throws IOException {
    return f.findTensor(name).isPresent() ? ggufVector(f, name, n) : null;
  }

  private static DType dtypeOf(Path path, String name, GgmlType t) throws ModelFormatException {
    if (t == null) {
      throw new ModelFormatException(path, "tensor '" + name + "' has an unknown type id");
    }
    return switch (t) {
      case F32 -> DType.F32;
      case F16 -> DType.F16;
      case BF16 -> DType.BF16;
      case Q8_0 -> DType.Q8_0;
      case Q4_0 -> DType.Q4_0;
      case Q5_0 -> DType.Q5_0;
      case Q5_1 -> DType.Q5_1;
      case Q2_K -> DType.Q2_K;
      case Q3_K -> DType.Q3_K;
      case Q4_K -> DType.Q4_K;
      case Q5_K -> DType.Q5_K;
      case Q6_K -> DType.Q6_K;
      default ->
          throw new ModelFormatException(
              path,
              "tensor '"
                  + name
                  + "' has type "
                  + t
                  + " (supported: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q5_1, Q2_K..Q6_K)");
    };
  }

  // ---------------------------------------------------------------- llama2.c

  static Model loadLlama2c(Path path, Optional<Path> tokenizerPath) throws IOException {
    Llama2cCheckpoint ck = Llama2cReader.open(path);
    try {
      Llama2cConfig c = ck.config();
      LlamaConfig config =
          config(
              path,
              () ->
                  new LlamaConfig(
                      c.dim(),
                      c.hiddenDim(),
                      c.nLayers(),
                      c.nHeads(),
                      c.nKvHeads(),
                      c.vocabSize(),
                      c.seqLen(),
                      10000f,
                      1e-5f,
                      RopeStyle.ADJACENT_PAIRS));
      int dim = c.dim();
      int kvDim = config.kvDim();
      int hidden = c.hiddenDim();
      Tensor embedding =
          f32(path, "token_embedding", c.vocabSize(), dim, ck.segment("token_embedding"));
      List<LayerWeights> layers = new ArrayList<>();
      for (int l = 0; l < c.nLayers(); l++) {
        layers.add(
            new LayerWeights(
                floats(ck.segment("rms_att", l)),
                f32(path, "wq", dim, dim, ck.segment("wq", l)),
                f32(path, "wk", kvDim, dim, ck.segment("wk", l)),
                f32(path, "wv", kvDim, dim, ck.segment("wv", l)),
                f32(path, "wo", dim, dim, ck.segment("wo", l)),
                null,
                null,
                null,
                floats(ck.segment("rms_ffn", l)),
                f32(path, "w1", hidden, dim, ck.segment("w1", l)),
                f32(path, "w3", hidden, dim, ck.segment("w3", l)),
                f32(path, "w2", dim, hidden, ck.segment("w2", l))));
      }
      Tensor output =
          c.sharedClassifier()
              ? embedding
              : f32(path, "wcls", c.vocabSize(), dim, ck.segment("wcls"));
      ModelWeights weights =
          new ModelWeights(embedding, layers, floats(ck.segment("rms_final")), output);
      Path tok = tokenizerPath.orElseGet(() -> defaultLlama2cTokenizer(path, c.vocabSize()));
      Tokenizer tokenizer = Llama2cTokenizerFile.read(tok, c.vocabSize());
      return new Model(path, "llama2c", config, weights, tokenizer, ck);
    } catch (IOException | RuntimeException e) {
      ck.close();
      throw e;
    }
  }

  private static Path defaultLlama2cTokenizer(Path checkpoint, int vocab) {
    Path dir = checkpoint.toAbsolutePath().getParent();
    Path byVocab = dir.resolve("tok" + vocab + ".bin");
    return Files.exists(byVocab) ? byVocab : dir.resolve("tokenizer.bin");
  }

  // ---------------------------------------------------------------- Hugging Face

  static Model loadHuggingFace(Path dir, Optional<Path> tokenizerPath) throws IOException {
    Path configFile = dir.resolve("config.json");
    if (!Files.isRegularFile(configFile)) {
      throw new ModelFormatException(dir, "a Hugging Face model folder needs config.json");
    }
    JsonNode cfg;
    try {
      cfg = new ObjectMapper().readTree(configFile.toFile());
    } catch (IOException e) {
      throw new ModelFormatException(configFile, "not valid JSON: " + e.getMessage(), e);
    }
    String type = cfg.path("model_type").asText("llama");
    if (!List.of("llama", "mistral", "qwen2").contains(type)) {
      throw new ModelFormatException(
          configFile, "model_type '" + type + "' is not supported (llama, mistral, qwen2 are)");
    }
    int dim = requiredInt(configFile, cfg, "hidden_size");
    int heads = requiredInt(configFile, cfg, "num_attention_heads");
    LlamaConfig config =
        config(
            configFile,
            () ->
                new LlamaConfig(
                    dim,
                    requiredInt(configFile, cfg, "intermediate_size"),
                    requiredInt(configFile, cfg, "num_hidden_layers"),
                    heads,
                    cfg.path("num_key_value_heads").asInt(heads),
                    requiredInt(configFile, cfg, "vocab_size"),
                    cfg.path("max_position_embeddings").asInt(2048),
                    (float) cfg.path("rope_theta").asDouble(10000.0),
                    (float) cfg.path("rms_norm_eps").asDouble(1e-5),
                    RopeStyle.HALF_SPLIT));
    SafetensorsModel st = SafetensorsModel.open(dir);
    try {
      int kvDim = config.kvDim();
      int hidden = config.hiddenDim();
      // Names spelled by TensorNames (kvant's name, then its Hugging Face spelling).
      Tensor embedding = stMatrix(st, hf(TensorNames.EMBEDDING), config.vocabSize(), dim);
      List<LayerWeights> layers = new ArrayList<>();
      for (int l = 0; l < config.layers(); l++) {
        layers.add(
            new LayerWeights(
                stVector(st, hf(TensorNames.attnNorm(l)), dim),
                stMatrix(st, hf(TensorNames.matrix(l, Role.Q)), dim, dim),
                stMatrix(st, hf(TensorNames.matrix(l, Role.K)), kvDim, dim),
                stMatrix(st, hf(TensorNames.matrix(l, Role.V)), kvDim, dim),
                stMatrix(st, hf(TensorNames.matrix(l, Role.O)), dim, dim),
                stOptionalVector(st, hf(TensorNames.bias(l, Role.Q)), dim),
                stOptionalVector(st, hf(TensorNames.bias(l, Role.K)), kvDim),
                stOptionalVector(st, hf(TensorNames.bias(l, Role.V)), kvDim),
                stVector(st, hf(TensorNames.ffnNorm(l)), dim),
                stMatrix(st, hf(TensorNames.matrix(l, Role.GATE)), hidden, dim),
                stMatrix(st, hf(TensorNames.matrix(l, Role.UP)), hidden, dim),
                stMatrix(st, hf(TensorNames.matrix(l, Role.DOWN)), dim, hidden)));
      }
      String head = hf(TensorNames.OUTPUT);
      boolean tied =
          cfg.path("tie_word_embeddings").asBoolean(false) || st.findTensor(head).isEmpty();
      Tensor output = tied ? embedding : stMatrix(st, head, config.vocabSize(), dim);
      ModelWeights weights =
          new ModelWeights(
              embedding, layers, stVector(st, hf(TensorNames.OUTPUT_NORM), dim), output);
      Tokenizer tokenizer =
          tokenizerPath.isPresent()
              ? tokenizerFile(tokenizerPath.get(), config.vocabSize())
              : HuggingFaceTokenizers.load(dir);
      return new Model(dir, "safetensors", config, weights, tokenizer, st);
    } catch (IOException | RuntimeException e) {
      st.close();
      throw e;
    }
  }

  private static int requiredInt(Path file, JsonNode cfg, String key) {
    JsonNode v = cfg.get(key);
    if (v == null || !v.canConvertToInt()) {
      throw new IllegalArgumentException(file + ": config.json needs an integer '" + key + "'");
    }
    return v.asInt();
  }

  private static Tensor stMatrix(SafetensorsModel st, String name, int rows, int cols)
      throws IOException {
    SafetensorsTensor t = st.tensor(name);
    long[] shape = t.shape();
    if (shape.length != 2 || shape[0] != rows || shape[1] != cols) {
      throw new ModelFormatException(
          st.source(),
          "tensor '"
              + name
              + "' has shape "
              + java.util.Arrays.toString(shape)
              + ", expected ["
              + rows
              + ", "
              + cols
              + "]");
    }
    return tensor(st.source(), name, stDtype(st, name), rows, cols, st.tensorData(name));
  }

  private static float[] stVector(SafetensorsModel st, String name, int n) throws IOException {
    SafetensorsTensor t = st.tensor(name);
    if (t.elementCount() != n) {
      throw new ModelFormatException(
          st.source(),
          "tensor '" + name + "' has " + t.elementCount() + " elements, expected " + n);
    }
    return vector(st.source(), name, stDtype(st, name), n, st.tensorData(name));
  }

  private static float[] stOptionalVector(SafetensorsModel st, String name, int n)
      throws IOException {
    return st.findTensor(name).isPresent() ? stVector(st, name, n) : null;
  }

  private static DType stDtype(SafetensorsModel st, String name) throws IOException {
    return switch (st.tensor(name).dtype()) {
      case F32 -> DType.F32;
      case F16 -> DType.F16;
      case BF16 -> DType.BF16;
      default ->
          throw new ModelFormatException(
              st.source(),
              "tensor '"
                  + name
                  + "' has dtype "
                  + st.tensor(name).dtype()
                  + " (F32, F16, BF16 are supported)");
    };
  }

  // ---------------------------------------------------------------- shared

  /** A tokenizer given on its own: tokenizer.json, SentencePiece .model, or llama2.c .bin. */
  static Tokenizer tokenizerFile(Path file, int vocab) throws IOException {
    String name = file.getFileName().toString();
    if (name.endsWith(".json")) {
      return io.kvant.engine.tokenizer.HfTokenizerJson.load(file, null);
    }
    if (name.endsWith(".model")) {
      return io.kvant.engine.tokenizer.SentencePieceModelFile.read(file);
    }
    return Llama2cTokenizerFile.read(file, vocab);
  }

  /** Runs a config constructor, turning its IllegalArgumentException into a format error. */
  private static LlamaConfig config(Path path, ConfigSupplier make) throws IOException {
    try {
      return make.get();
    } catch (IllegalArgumentException e) {
      throw new ModelFormatException(path, "bad hyper-parameters: " + e.getMessage(), e);
    }
  }

  @FunctionalInterface
  private interface ConfigSupplier {
    LlamaConfig get() throws IOException;
  }

  private static Tensor tensor(
      Path path, String name, DType type, int rows, int cols, MemorySegment data)
      throws ModelFormatException {
    try {
      return Tensors.of(type, rows, cols, data);
    } catch (IllegalArgumentException e) {
      throw new ModelFormatException(path, "tensor '" + name + "': " + e.getMessage(), e);
    }
  }

  private static Tensor f32(Path path, String name, int rows, int cols, MemorySegment data)
      throws ModelFormatException {
    return tensor(path, name, DType.F32, rows, cols, data);
  }

  private static float[] vector(Path path, String name, DType type, int n, MemorySegment data)
      throws ModelFormatException {
    if (type == DType.F32) {
      return floats(data);
    }
    Tensor t = tensor(path, name, type, 1, n, data);
    float[] out = new float[n];
    t.dequantizeRow(0, out, 0);
    return out;
  }

  private static float[] floats(MemorySegment seg) {
    return seg.toArray(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN));
  }

  private static String hf(String kvantName) {
    return TensorNames.huggingFace(kvantName);
  }
}
