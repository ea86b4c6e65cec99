package io.kvant.perf.synth;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.Transformer;
import io.kvant.engine.kv.ContiguousKvStore;
import io.kvant.engine.model.LayerWeights;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelLoader;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A K-quant (or 5-bit) GGUF written by {@code bench synth} loads in kvant and computes what its
 * dequantized F32 twin computes; and the encoder's rounding error is what its bit width allows.
 */
class KQuantTwinTest {
  @TempDir Path dir;

  @ParameterizedTest
  @EnumSource(
      value = WeightType.class,
      names = {"Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"})
  void quantizedFileMatchesItsDequantizedF32Twin(WeightType type) throws Exception {
    ModelShape shape = SynthModelWriterTest.TINY_K;
    Path quantized = dir.resolve("q.gguf");
    Path twin = dir.resolve("twin.gguf");
    SynthModelWriter writer = new SynthModelWriter(shape, type, 11, 2);
    writer.write(quantized, (d, t) -> {});
    writer.dequantizedTwin().write(twin, (d, t) -> {});
    try (Model q = ModelLoader.load(quantized, Optional.empty());
        Model f = ModelLoader.load(twin, Optional.empty());
        ComputePool pool = new ComputePool(1)) {
      List<Tensor> qm = matrices(q);
      List<Tensor> fm = matrices(f);
      for (int i = 0; i < qm.size(); i++) {
        assertThat(qm.get(i).dtype()).isEqualTo(DType.valueOf(type.name()));
        assertThat(fm.get(i).dtype()).isEqualTo(DType.F32);
        assertThat(rows(qm.get(i))).as("matrix %d", i).isEqualTo(rows(fm.get(i)));
      }
      float[] ql = logits(q, pool);
      float[] fl = logits(f, pool);
      double scale = 0;
      for (float v : fl) {
        scale = Math.max(scale, Math.abs(v));
      }
      assertThat(scale).isPositive();
      for (int i = 0; i < fl.length; i++) {
        assertThat((double) ql[i]).as("logit %d", i).isCloseTo(fl[i], within(1e-5 * scale));
      }
    }
  }

  /** Relative RMS error of one encode/decode, by type: more bits, less error. */
  @ParameterizedTest
  @EnumSource(
      value = WeightType.class,
      names = {"Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"})
  void roundTripErrorFitsTheBitWidth(WeightType type) {
    double bound =
        switch (type) {
          case Q6_K -> 0.03;
          case Q5_0, Q5_1, Q5_K -> 0.06;
          case Q4_K -> 0.12;
          case Q3_K -> 0.25;
          case Q2_K -> 0.5;
          default -> throw new AssertionError(type);
        };
    SplittableRandom rnd = new SplittableRandom(3);
    double err = 0;
    double norm = 0;
    for (int trial = 0; trial < 64; trial++) {
      float[] x = new float[512];
      for (int i = 0; i < x.length; i++) {
        x[i] = (float) (0.02 * gaussian(rnd));
      }
      float[] y = x.clone();
      SynthModelWriter.roundTrip(type, y);
      for (int i = 0; i < x.length; i++) {
        err += (x[i] - y[i]) * (double) (x[i] - y[i]);
        norm += x[i] * (double) x[i];
      }
    }
    double rel = Math.sqrt(err / norm);
    assertThat(rel).as(type + " relative RMS error").isLessThan(bound).isGreaterThan(0);
  }

  private static double gaussian(SplittableRandom rnd) {
    double u = 1 - rnd.nextDouble();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rnd.nextDouble());
  }

  private static org.assertj.core.data.Offset<Double> within(double tol) {
    return org.assertj.core.data.Offset.offset(tol);
  }

  private static List<Tensor> matrices(Model m) {
    List<Tensor> out = new ArrayList<>();
    out.add(m.weights().embedding());
    for (LayerWeights l : m.weights().layers()) {
      out.addAll(List.of(l.wq(), l.wk(), l.wv(), l.wo(), l.wGate(), l.wUp(), l.wDown()));
    }
    return out;
  }

  private static float[] rows(Tensor t) {
    float[] out = new float[t.rows() * t.cols()];
    for (int r = 0; r < t.rows(); r++) {
      t.dequantizeRow(r, out, r * t.cols());
    }
    return out;
  }

  private static float[] logits(Model m, ComputePool pool) {
    LlamaConfig c = m.config();
    Transformer t = new Transformer(c, m.weights(), pool);
    ContiguousKvStore kv = new ContiguousKvStore(c.layers(), c.kvHeads(), c.headSize(), 64, 1);
    return t.forward(Batch.ofSequence(0, 0, 1, 17, 42, 99, 7, 250), kv);
  }
}
