package io.kvant.engine.format.gguf;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.testing.SharedModels;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Facts about the real stories260K.gguf, as recorded in shared/models/stories260K/SOURCE.md. */
class Stories260KGgufTest {
  private static Path file() {
    return SharedModels.require("stories260K/stories260K.gguf");
  }

  @Test
  void headerAndLayout() throws Exception {
    Path path = file();
    try (GgufFile f = GgufReader.open(path)) {
      assertThat(f.fileSize()).isEqualTo(Files.size(path)).isEqualTo(1_185_376);
      assertThat(f.version()).isEqualTo(3);
      assertThat(f.keys()).hasSize(19);
      assertThat(f.tensorCount()).isEqualTo(48);
      assertThat(f.alignment()).isEqualTo(32);
      assertThat(f.dataOffset()).isEqualTo(14176);
    }
  }

  @Test
  void metadata() throws Exception {
    try (GgufFile f = GgufReader.open(file())) {
      assertThat(f.getString("general.architecture")).isEqualTo("llama");
      assertThat(f.getInt("llama.embedding_length")).isEqualTo(64);
      assertThat(f.getInt("llama.feed_forward_length")).isEqualTo(172);
      assertThat(f.getInt("llama.block_count")).isEqualTo(5);
      assertThat(f.getInt("llama.attention.head_count")).isEqualTo(8);
      assertThat(f.getInt("llama.attention.head_count_kv")).isEqualTo(4);
      assertThat(f.getInt("llama.rope.dimension_count")).isEqualTo(8);
      assertThat(f.getInt("llama.context_length")).isEqualTo(2048);
      assertThat(f.getFloat("llama.attention.layer_norm_rms_epsilon")).isEqualTo(1e-5f);
      assertThat(f.getString("tokenizer.ggml.model")).isEqualTo("llama");
      assertThat(f.getStringArray("tokenizer.ggml.tokens"))
          .hasSize(512)
          .startsWith("<unk>", "<s>", "</s>", "<0x00>");
      assertThat(f.getFloatArray("tokenizer.ggml.scores")).hasSize(512);
      assertThat(f.getIntArray("tokenizer.ggml.token_type")).hasSize(512);
      assertThat(f.getInt("tokenizer.ggml.unknown_token_id")).isEqualTo(0);
      assertThat(f.getInt("tokenizer.ggml.bos_token_id")).isEqualTo(1);
      assertThat(f.getInt("tokenizer.ggml.eos_token_id")).isEqualTo(2);
      assertThat(f.getLong("tokenizer.ggml.seperator_token_id", 0xFFFFFFFFL))
          .isEqualTo(0xFFFFFFFFL);
    }
  }

  @Test
  void tensorsAreAllF32WithTheDocumentedShapes() throws Exception {
    Map<String, long[]> perBlock =
        Map.of(
            "attn_q", new long[] {64, 64},
            "attn_k", new long[] {64, 32},
            "attn_v", new long[] {64, 32},
            "attn_output", new long[] {64, 64},
            "attn_norm", new long[] {64},
            "ffn_gate", new long[] {64, 172},
            "ffn_down", new long[] {172, 64},
            "ffn_up", new long[] {64, 172},
            "ffn_norm", new long[] {64});
    try (GgufFile f = GgufReader.open(file())) {
      assertThat(f.tensor("token_embd.weight").dims()).containsExactly(64, 512);
      assertThat(f.tensor("output.weight").dims()).containsExactly(64, 512);
      assertThat(f.tensor("output_norm.weight").dims()).containsExactly(64);
      for (int b = 0; b < 5; b++) {
        for (var e : perBlock.entrySet()) {
          assertThat(f.tensor("blk." + b + "." + e.getKey() + ".weight").dims())
              .containsExactly(e.getValue());
        }
      }
      long total = 0;
      for (GgufTensorInfo t : f.tensors()) {
        assertThat(t.type()).contains(GgmlType.F32);
        assertThat(t.byteSize()).isEqualTo(4 * t.elementCount());
        assertThat(t.offset() % 32).isZero();
        total += t.byteSize();
      }
      assertThat(f.dataOffset() + total).isLessThanOrEqualTo(f.fileSize());
      // SOURCE.md: output.weight equals token_embd.weight.
      assertThat(f.tensorData("output.weight").mismatch(f.tensorData("token_embd.weight")))
          .isEqualTo(-1);
      // RMSNorm weights of a trained model are finite and not all zero.
      var le = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
      float[] norm = f.tensorData("output_norm.weight").toArray(le);
      assertThat(norm).hasSize(64).doesNotContain(Float.NaN);
      assertThat(norm).isNotEqualTo(new float[64]);
    }
  }
}
