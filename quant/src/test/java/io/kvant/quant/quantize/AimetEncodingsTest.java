package io.kvant.quant.quantize;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.engine.tensor.Tensor;
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
}
