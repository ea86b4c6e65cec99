package io.kvant.engine.format;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.format.gguf.GgufFile;
import io.kvant.engine.format.gguf.GgufReader;
import io.kvant.engine.format.llama2c.Llama2cCheckpoint;
import io.kvant.engine.format.llama2c.Llama2cReader;
import io.kvant.engine.testing.SharedModels;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * stories260K.bin was rebuilt from stories260K.gguf's tensors in llama2.c order with no permutation
 * (SOURCE.md), so each llama2.c array must equal its GGUF tensor byte for byte.
 */
class CrossFormatTest {
  @Test
  void llama2cWeightsEqualGgufTensors() throws Exception {
    Map<String, String> perLayer =
        Map.of(
            "wq", "attn_q",
            "wk", "attn_k",
            "wv", "attn_v",
            "wo", "attn_output",
            "rms_att", "attn_norm",
            "rms_ffn", "ffn_norm",
            "w1", "ffn_gate",
            "w2", "ffn_down",
            "w3", "ffn_up");
    try (GgufFile gguf = GgufReader.open(SharedModels.require("stories260K/stories260K.gguf"));
        Llama2cCheckpoint bin =
            Llama2cReader.open(SharedModels.require("stories260K/stories260K.bin"))) {
      assertThat(bin.segment("wq", 0).mismatch(gguf.tensorData("blk.0.attn_q.weight")))
          .isEqualTo(-1);
      assertThat(bin.segment("token_embedding").mismatch(gguf.tensorData("token_embd.weight")))
          .isEqualTo(-1);
      assertThat(bin.segment("rms_final").mismatch(gguf.tensorData("output_norm.weight")))
          .isEqualTo(-1);
      for (int layer = 0; layer < 5; layer++) {
        for (var e : perLayer.entrySet()) {
          String ggufName = "blk." + layer + "." + e.getValue() + ".weight";
          assertThat(bin.segment(e.getKey(), layer).mismatch(gguf.tensorData(ggufName)))
              .as("%s layer %d vs %s", e.getKey(), layer, ggufName)
              .isEqualTo(-1);
        }
      }
    }
  }
}
