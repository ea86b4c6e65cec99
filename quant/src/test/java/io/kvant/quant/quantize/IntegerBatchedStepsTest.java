package io.kvant.quant.quantize;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.MatmulKernels;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.kv.ContiguousKvStore;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelLoader;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.testing.SharedModels;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The integer path's many-row steps, whose per-row stages (residual add, norm, SwiGLU, activation
 * quantization, attention) are split across the compute pool, give bitwise the logits of the same
 * steps on a one-thread pool, where every stage runs on the caller in row order. On random prompts
 * and tokens; the bundled model has whole quantization blocks per head (head size 32), stories260K
 * not (8), so both ways of quantizing attention's output are taken.
 */
class IntegerBatchedStepsTest {
  // Enough rows and positions that attention too is split across the pool (its threshold is
  // counted in multiply-adds over the positions attended), in the prefill and in the decode steps.
  private static final int SEQUENCES = 16;
  private static final int PROMPT = 30;
  private static final int STEPS = 4;

  static Stream<Arguments> models() {
    Path stories = SharedModels.require("stories260K/stories260K.gguf");
    Path bundled = Path.of("../models/kvant-kjv-7m.gguf");
    return Stream.of(
        Arguments.of(stories, "q8_0"),
        Arguments.of(stories, "q4_0"),
        Arguments.of(bundled, "q8_0"),
        Arguments.of(bundled, "q4_0"));
  }

  @ParameterizedTest(name = "{0} {1}")
  @MethodSource("models")
  void batchedStepsOnTwoThreadsEqualTheSameStepsOnOne(Path file, String recipe) throws Exception {
    try (Model model = ModelLoader.load(file, Optional.empty());
        ComputePool two = new ComputePool(2);
        ComputePool one = new ComputePool(1)) {
      LlamaConfig c = model.config();
      Model q = Quantizer.quantize(model, Recipe.builtin(recipe), Calibration.NONE);
      SplittableRandom r = new SplittableRandom(5);
      int[][] tokens = new int[SEQUENCES][];
      for (int s = 0; s < SEQUENCES; s++) {
        // Prompts of different lengths (prefill rows of one sequence attend to each other), then
        // STEPS decode tokens.
        tokens[s] = new int[PROMPT + s + STEPS];
        tokens[s][0] = 1;
        for (int i = 1; i < tokens[s].length; i++) {
          tokens[s][i] = r.nextInt(3, c.vocabSize());
        }
      }
      try (Transformer split = new Transformer(c, q.weights(), two, null, MatmulKernels.INTEGER);
          Transformer serial = new Transformer(c, q.weights(), one, null, MatmulKernels.INTEGER)) {
        // Warmed up first: attention's lane sums (reduceLanes) differ in the last bits between the
        // Vector API's interpreted form and C2's, so the first steps of a fresh JVM are not bitwise
        // the later ones whatever the threads (KvKernels.dots says so).
        batchedLogits(serial, c, tokens);
        batchedLogits(split, c, tokens);
        float[][][] expected = batchedLogits(serial, c, tokens);
        float[][][] actual = batchedLogits(split, c, tokens);
        for (int s = 0; s < SEQUENCES; s++) {
          for (int step = 0; step <= STEPS; step++) {
            assertThat(actual[s][step])
                .as("sequence %d, step %d", s, step)
                .containsExactly(expected[s][step]);
          }
        }
      }
    }
  }

  /**
   * Logits after the prompt and after each decode token, all sequences in one batch per step: the
   * prompts together, then one row each.
   */
  private static float[][][] batchedLogits(Transformer t, LlamaConfig c, int[][] tokens) {
    int n = tokens.length;
    ContiguousKvStore kv = new ContiguousKvStore(c.layers(), c.kvHeads(), c.headSize(), 64, n);
    float[][][] out = new float[n][STEPS + 1][];
    int rows = 0;
    for (int[] seq : tokens) {
      rows += seq.length - STEPS;
    }
    int[] tok = new int[rows];
    int[] pos = new int[rows];
    int[] seqs = new int[rows];
    int[] logitRows = new int[n];
    int row = 0;
    for (int s = 0; s < n; s++) {
      for (int i = 0; i < tokens[s].length - STEPS; i++, row++) {
        tok[row] = tokens[s][i];
        pos[row] = i;
        seqs[row] = s;
      }
      logitRows[s] = row - 1;
    }
    split(t.forward(new Batch(tok, pos, seqs, logitRows), kv), c.vocabSize(), out, 0);
    for (int step = 1; step <= STEPS; step++) {
      int[] dTok = new int[n];
      int[] dPos = new int[n];
      int[] dSeq = new int[n];
      int[] dRows = new int[n];
      for (int s = 0; s < n; s++) {
        dPos[s] = tokens[s].length - STEPS + step - 1;
        dTok[s] = tokens[s][dPos[s]];
        dSeq[s] = s;
        dRows[s] = s;
      }
      split(t.forward(new Batch(dTok, dPos, dSeq, dRows), kv), c.vocabSize(), out, step);
    }
    return out;
  }

  private static void split(float[] logits, int vocab, float[][][] out, int step) {
    for (int s = 0; s < out.length; s++) {
      out[s][step] = Arrays.copyOfRange(logits, s * vocab, (s + 1) * vocab);
    }
  }
}
