package io.kvant.quant.encoding;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.engine.tensor.Tensor;
import io.kvant.quant.quantize.Method;
import io.kvant.quant.quantize.QuantSpec;
import io.kvant.quant.quantize.WeightQuantizer;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;

class AimetEncodingsTest {
  private static final int ROWS = 6;
  private static final int COLS = 172;

  private static float[] weights(long seed) {
    Random rnd = new Random(seed);
    float[] w = new float[ROWS * COLS];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) rnd.nextGaussian() * 0.05f;
    }
    return w;
  }

  private static final AimetEncodings.Shapes SHAPES =
      name -> name.startsWith("w") ? new int[] {ROWS, COLS} : null;

  /** Written, read back and applied: the same tensor as quantizing directly, bit for bit. */
  @Test
  void writtenEncodingsReadBackAndApplyToTheSameTensors() {
    List<QuantSpec> specs =
        List.of(
            QuantSpec.int8(Method.MSE),
            QuantSpec.int4(32, true, Method.MSE),
            QuantSpec.int4(64, false, Method.PERCENTILE),
            QuantSpec.fp8(WeightFormat.FP8_E4M3, false, Method.MINMAX),
            QuantSpec.fp8(WeightFormat.FP8_E5M2, true, Method.MSE));
    Map<String, TensorEncoding> encodings = new LinkedHashMap<>();
    Map<String, Tensor> direct = new LinkedHashMap<>();
    for (int i = 0; i < specs.size(); i++) {
      WeightQuantizer.Result r =
          WeightQuantizer.quantize("w" + i, weights(i), ROWS, COLS, specs.get(i), null);
      encodings.put("w" + i, r.encoding());
      direct.put("w" + i, r.tensor());
    }
    String json = AimetEncodings.write(encodings);
    assertThat(json)
        .contains("\"version\" : \"1.0.0\"")
        .contains("PER_BLOCK")
        .contains("\"block_size\" : 32");
    Map<String, TensorEncoding> back = AimetEncodings.read(json, SHAPES);
    assertThat(back).isEqualTo(encodings);
    for (int i = 0; i < specs.size(); i++) {
      Tensor applied = WeightQuantizer.apply(weights(i), back.get("w" + i));
      assertThat(WeightQuantizer.dequantize(applied))
          .isEqualTo(WeightQuantizer.dequantize(direct.get("w" + i)));
      assertThat(applied.data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE))
          .isEqualTo(direct.get("w" + i).data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
    }
  }

  /** An AIMET 0.6.1 per-channel file, as AIMET writes it (string booleans, min/max present). */
  @Test
  void readsAimet061PerChannelEncodings() {
    StringBuilder sb =
        new StringBuilder(
            "{\"version\": \"0.6.1\", \"activation_encodings\": {}, \"param_encodings\": {\"w\": [");
    for (int r = 0; r < ROWS; r++) {
      double scale = 0.001 * (r + 1);
      sb.append(r == 0 ? "" : ",")
          .append("{\"bitwidth\": 8, \"dtype\": \"int\", \"is_symmetric\": \"True\", \"max\": ")
          .append(127 * scale)
          .append(", \"min\": ")
          .append(-128 * scale)
          .append(", \"offset\": -128, \"scale\": ")
          .append(scale)
          .append("}");
    }
    sb.append("]}}");
    TensorEncoding e = AimetEncodings.read(sb.toString(), SHAPES).get("w");
    assertThat(e.format()).isEqualTo(WeightFormat.INT8);
    assertThat(e.granularity()).isEqualTo(TensorEncoding.Granularity.PER_CHANNEL);
    assertThat(e.scale()[2]).isEqualTo(0.003f);
    assertThat(e.min(2)).isCloseTo(-128 * 0.003, org.assertj.core.data.Offset.offset(1e-7));
    Tensor t = WeightQuantizer.apply(weights(1), e);
    float x = weights(1)[2 * COLS + 5];
    assertThat(t.get(2, 5)).isEqualTo(0.003f * (float) Math.rint(x / 0.003f));
  }

  @Test
  void malformedEncodingsAreRejectedWithAClearMessage() {
    String ok =
        "{\"version\":\"1.0.0\",\"param_encodings\":[{\"name\":\"w\",\"dtype\":\"INT\",\"enc_type\":\"PER_CHANNEL\",\"is_sym\":true,\"bw\":8,\"scale\":%s,\"offset\":%s}]}";
    String six = "[1,1,1,1,1,1]";
    String offs = "[-128,-128,-128,-128,-128,-128]";
    assertThat(AimetEncodings.read(ok.formatted(six, offs), SHAPES)).containsKey("w");
    assertThatThrownBy(
            () -> AimetEncodings.read(ok.formatted("[1,1,1]", "[-128,-128,-128]"), SHAPES))
        .hasMessageContaining("'w'")
        .hasMessageContaining("needs 6 scales");
    assertThatThrownBy(() -> AimetEncodings.read(ok.formatted("[1,1,1,1,1,\"NaN\"]", offs), SHAPES))
        .hasMessageContaining("must be a number");
    assertThatThrownBy(() -> AimetEncodings.read(ok.formatted("[1,1,1,1,1,NaN]", offs), SHAPES))
        .hasMessageContaining("not valid JSON");
    assertThatThrownBy(() -> AimetEncodings.read(ok.formatted("[1,1,1,1,1,1e39]", offs), SHAPES))
        .hasMessageContaining("not finite");
    assertThatThrownBy(
            () ->
                AimetEncodings.read(ok.formatted(six, offs).replace("\"INT\"", "\"BFP\""), SHAPES))
        .hasMessageContaining("unknown dtype 'BFP'");
    assertThatThrownBy(
            () ->
                AimetEncodings.read(
                    ok.formatted(six, offs).replace("PER_CHANNEL", "PER_ROW"), SHAPES))
        .hasMessageContaining("unknown enc_type");
    assertThatThrownBy(
            () ->
                AimetEncodings.read(
                    ok.formatted(six, offs).replace("\"bw\":8", "\"bw\":3"), SHAPES))
        .hasMessageContaining("bit width 3");
    assertThatThrownBy(
            () -> AimetEncodings.read(ok.formatted(six, offs).replace("\"w\"", "\"nope\""), SHAPES))
        .hasMessageContaining("unknown tensor 'nope'");
    assertThatThrownBy(
            () -> AimetEncodings.read(ok.formatted(six, "[-128,-128,-128,-128,-128,-1.5]"), SHAPES))
        .hasMessageContaining("offset must be an integer");
  }

  /**
   * Any byte-level corruption of a valid file is either read or rejected as
   * IllegalArgumentException.
   */
  @Property(tries = 300)
  void corruptedFilesFailCleanly(
      @ForAll @IntRange(min = 0, max = 100_000) int at,
      @ForAll @IntRange(min = 32, max = 126) int ch) {
    Map<String, TensorEncoding> enc =
        Map.of(
            "w0",
            WeightQuantizer.quantize(
                    "w0", weights(0), ROWS, COLS, QuantSpec.int4(32, false, Method.MINMAX), null)
                .encoding());
    char[] text = AimetEncodings.write(enc).toCharArray();
    text[at % text.length] = (char) ch;
    try {
      Map<String, TensorEncoding> back = AimetEncodings.read(new String(text), SHAPES);
      back.values().forEach(e -> WeightQuantizer.apply(weights(0), e));
    } catch (IllegalArgumentException expected) {
      assertThat(expected.getMessage()).isNotBlank();
    }
  }

  /** kvant's shapes for a 2-layer Llama with dim 8, hidden 16, vocab 32 and a separate head. */
  private static final AimetEncodings.Shapes LLAMA =
      name ->
          switch (name.replaceFirst("^blk\\.[01]\\.", "L.")) {
            case "token_embd.weight", "output.weight" -> new int[] {32, 8};
            case "L.attn_q.weight", "L.attn_k.weight", "L.attn_v.weight", "L.attn_output.weight" ->
                new int[] {8, 8};
            case "L.ffn_gate.weight", "L.ffn_up.weight" -> new int[] {16, 8};
            case "L.ffn_down.weight" -> new int[] {8, 16};
            default -> null;
          };

  private static String perTensorInt8(String name, int rows) {
    return "{\"name\": \""
        + name
        + "\", \"dtype\": \"INT\", \"enc_type\": \"PER_TENSOR\", \"is_sym\": true,"
        + " \"bw\": 8, \"scale\": [0.01], \"offset\": [-128]}";
  }

  private static String file(List<String> names) {
    StringBuilder sb = new StringBuilder("{\"version\": \"1.0.0\", \"param_encodings\": [");
    for (int i = 0; i < names.size(); i++) {
      sb.append(i == 0 ? "" : ",").append(perTensorInt8(names.get(i), 8));
    }
    return sb.append("], \"activation_encodings\": []}").toString();
  }

  /**
   * Encodings named as AIMET's PyTorch export of a Hugging Face Llama names them (module parameter
   * names), and as a torch.onnx export's node paths, map to kvant's tensors.
   */
  @Test
  void huggingFaceAndOnnxExportNamesMapToKvantTensors() {
    List<String> hf = new java.util.ArrayList<>();
    hf.add("model.embed_tokens.weight");
    hf.add("lm_head.weight");
    for (int l = 0; l < 2; l++) {
      for (String p : List.of("q", "k", "v", "o")) {
        hf.add("model.layers." + l + ".self_attn." + p + "_proj.weight");
      }
      for (String p : List.of("gate", "up", "down")) {
        hf.add("model.layers." + l + ".mlp." + p + "_proj.weight");
      }
    }
    Map<String, TensorEncoding> fromHf = AimetEncodings.read(file(hf), LLAMA);
    assertThat(fromHf)
        .hasSize(16)
        .containsKeys(
            "token_embd.weight",
            "output.weight",
            "blk.0.attn_q.weight",
            "blk.1.attn_output.weight",
            "blk.1.ffn_down.weight");
    assertThat(fromHf.values()).allSatisfy(e -> assertThat(fromHf).containsKey(e.name()));

    Map<String, TensorEncoding> fromOnnx =
        AimetEncodings.read(
            file(
                List.of(
                    "/model/layers.0/self_attn/q_proj/MatMul",
                    "/model/layers.1/mlp/down_proj/MatMul",
                    "base_model.model.model.layers.1.mlp.up_proj.weight")),
            LLAMA);
    assertThat(fromOnnx.keySet())
        .containsExactly("blk.0.attn_q.weight", "blk.1.ffn_down.weight", "blk.1.ffn_up.weight");
  }

  /** A name that maps to nothing, or to a weight the model lacks, is rejected naming it. */
  @Test
  void unknownNamesAreRejectedNamingThem() {
    assertThatThrownBy(
            () ->
                AimetEncodings.read(
                    file(List.of("model.layers.0.self_attn.q_proj.weight", "onnx::MatMul_1234")),
                    LLAMA))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("'onnx::MatMul_1234'")
        .hasMessageContaining("not a kvant, Hugging Face/PyTorch or ONNX weight name");
    assertThatThrownBy(
            () -> AimetEncodings.read(file(List.of("model.layers.7.mlp.up_proj.weight")), LLAMA))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("'model.layers.7.mlp.up_proj.weight'")
        .hasMessageContaining("blk.7.ffn_up.weight")
        .hasMessageContaining("no such quantizable weight");
    assertThatThrownBy(
            () -> AimetEncodings.read(file(List.of("model.layers.0.mlp.q_proj.weight")), LLAMA))
        .hasMessageContaining("'model.layers.0.mlp.q_proj.weight'");
  }
}
