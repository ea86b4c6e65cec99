package io.kvant.cuda.model;

import io.kvant.engine.model.LayerWeights;
import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Fp8Codes;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tensor.Tensors;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * Quantized tensors of every type the CUDA backend reads, made from floats with plain round-to-
 * nearest absmax/min-max scales. They exercise the device layouts and kernels; the quality of the
 * production quantizers (AWQ, GPTQ, range search) is measured elsewhere and does not matter here:
 * the GPU must compute what the CPU computes from the same tensor, whatever its codes.
 */
final class QuantFixtures {
  private QuantFixtures() {}

  /** A quantization: {@code I8}, {@code I4:g128}, {@code I4:g32:asym}, {@code F8_E4M3:tensor}... */
  record Kind(DType type, int group, boolean asymmetric, boolean perTensor) {
    static Kind parse(String s) {
      String[] p = s.split(":");
      DType t = DType.valueOf(p[0]);
      int g = 0;
      boolean asym = false;
      boolean tensor = false;
      for (int i = 1; i < p.length; i++) {
        if (p[i].startsWith("g")) {
          g = Integer.parseInt(p[i].substring(1));
        } else if (p[i].equals("asym")) {
          asym = true;
        } else if (p[i].equals("tensor")) {
          tensor = true;
        } else {
          throw new IllegalArgumentException(s);
        }
      }
      return new Kind(t, g, asym, tensor);
    }
  }

  static Tensor quantize(float[] w, int rows, int cols, Kind k) {
    return switch (k.type()) {
      case I8 -> int8(w, rows, cols);
      case I4 -> int4(w, rows, cols, k.group(), k.asymmetric());
      case F8_E4M3, F8_E5M2 -> fp8(w, rows, cols, k.type(), k.perTensor());
      case Q8_0 -> q8_0(w, rows, cols);
      case Q4_0 -> q4_0(w, rows, cols);
      default -> throw new IllegalArgumentException(k.toString());
    };
  }

  static Tensor int8(float[] w, int rows, int cols) {
    MemorySegment codes = Arena.ofAuto().allocate((long) rows * cols);
    float[] scales = new float[rows];
    for (int r = 0; r < rows; r++) {
      float max = 0;
      for (int c = 0; c < cols; c++) {
        max = Math.max(max, Math.abs(w[r * cols + c]));
      }
      float s = max == 0 ? 1f : max / 127f;
      scales[r] = s;
      for (int c = 0; c < cols; c++) {
        int q = Math.round(w[r * cols + c] / s);
        codes.set(ValueLayout.JAVA_BYTE, (long) r * cols + c, (byte) Math.clamp(q, -127, 127));
      }
    }
    return Tensors.int8(rows, cols, codes, scales);
  }

  static Tensor int4(float[] w, int rows, int cols, int group, boolean asymmetric) {
    int groups = (cols + group - 1) / group;
    int rowBytes = (cols + 1) / 2;
    MemorySegment codes = Arena.ofAuto().allocate((long) rows * rowBytes);
    float[] scales = new float[rows * groups];
    byte[] zeros = asymmetric ? new byte[rows * groups] : null;
    for (int r = 0; r < rows; r++) {
      for (int g = 0; g < groups; g++) {
        int start = g * group;
        int len = Math.min(group, cols - start);
        float lo = Float.MAX_VALUE;
        float hi = -Float.MAX_VALUE;
        float amax = 0;
        for (int j = 0; j < len; j++) {
          float v = w[r * cols + start + j];
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
          amax = Math.max(amax, Math.abs(v));
        }
        float s;
        int z;
        if (asymmetric) {
          s = hi > lo ? (hi - lo) / 15f : 1f;
          z = Math.clamp(Math.round(-lo / s), 0, 15);
          zeros[r * groups + g] = (byte) z;
        } else {
          s = amax == 0 ? 1f : amax / 7f;
          z = 8;
        }
        scales[r * groups + g] = s;
        int h = (len + 1) / 2;
        for (int j = 0; j < len; j++) {
          int q = Math.clamp(Math.round(w[r * cols + start + j] / s) + z, 0, 15);
          long at = (long) r * rowBytes + (long) g * (group / 2) + (j < h ? j : j - h);
          int b = codes.get(ValueLayout.JAVA_BYTE, at) & 0xFF;
          b = j < h ? (b & 0xF0) | q : (b & 0x0F) | (q << 4);
          codes.set(ValueLayout.JAVA_BYTE, at, (byte) b);
        }
      }
    }
    return Tensors.int4(rows, cols, group, codes, scales, zeros);
  }

  static Tensor fp8(float[] w, int rows, int cols, DType type, boolean perTensor) {
    MemorySegment codes = Arena.ofAuto().allocate((long) rows * cols);
    float[] scales = new float[perTensor ? 1 : rows];
    float all = 0;
    for (float v : w) {
      all = Math.max(all, Math.abs(v));
    }
    float maxCode = Fp8Codes.maxFinite(type);
    for (int r = 0; r < rows; r++) {
      float max = all;
      if (!perTensor) {
        max = 0;
        for (int c = 0; c < cols; c++) {
          max = Math.max(max, Math.abs(w[r * cols + c]));
        }
      }
      float s = max == 0 ? 1f : max / maxCode;
      scales[perTensor ? 0 : r] = s;
      for (int c = 0; c < cols; c++) {
        codes.set(
            ValueLayout.JAVA_BYTE,
            (long) r * cols + c,
            (byte) Fp8Codes.encode(type, w[r * cols + c] / s));
      }
    }
    return Tensors.fp8(type, rows, cols, codes, scales);
  }

  static Tensor q8_0(float[] w, int rows, int cols) {
    int blocks = cols / 32;
    MemorySegment data = Arena.ofAuto().allocate((long) rows * blocks * 34);
    for (int r = 0; r < rows; r++) {
      for (int b = 0; b < blocks; b++) {
        float max = 0;
        for (int j = 0; j < 32; j++) {
          max = Math.max(max, Math.abs(w[r * cols + b * 32 + j]));
        }
        short d16 = Float.floatToFloat16(max / 127f);
        float d = Float.float16ToFloat(d16);
        long at = ((long) r * blocks + b) * 34;
        data.set(ValueLayout.JAVA_SHORT_UNALIGNED, at, d16);
        for (int j = 0; j < 32; j++) {
          int q = d == 0 ? 0 : Math.clamp(Math.round(w[r * cols + b * 32 + j] / d), -127, 127);
          data.set(ValueLayout.JAVA_BYTE, at + 2 + j, (byte) q);
        }
      }
    }
    return Tensors.of(DType.Q8_0, rows, cols, data);
  }

  static Tensor q4_0(float[] w, int rows, int cols) {
    int blocks = cols / 32;
    MemorySegment data = Arena.ofAuto().allocate((long) rows * blocks * 18);
    for (int r = 0; r < rows; r++) {
      for (int b = 0; b < blocks; b++) {
        float max = 0;
        for (int j = 0; j < 32; j++) {
          max = Math.max(max, Math.abs(w[r * cols + b * 32 + j]));
        }
        short d16 = Float.floatToFloat16(max / 7f);
        float d = Float.float16ToFloat(d16);
        long at = ((long) r * blocks + b) * 18;
        data.set(ValueLayout.JAVA_SHORT_UNALIGNED, at, d16);
        for (int j = 0; j < 16; j++) {
          int lo = code4(w[r * cols + b * 32 + j], d);
          int hi = code4(w[r * cols + b * 32 + 16 + j], d);
          data.set(ValueLayout.JAVA_BYTE, at + 2 + j, (byte) (lo | (hi << 4)));
        }
      }
    }
    return Tensors.of(DType.Q4_0, rows, cols, data);
  }

  private static int code4(float v, float d) {
    return d == 0 ? 8 : Math.clamp(Math.round(v / d) + 8, 0, 15);
  }

  static float[] floats(Tensor t) {
    float[] out = new float[t.rows() * t.cols()];
    for (int r = 0; r < t.rows(); r++) {
      t.dequantizeRow(r, out, r * t.cols());
    }
    return out;
  }

  /**
   * {@code w} with every matrix but the embedding quantized as {@code kind} (the tied output too,
   * which then differs from the embedding); matrices whose width the kind cannot take (Q4_0/Q8_0
   * need multiples of 32) stay as they are.
   */
  static ModelWeights quantizeModel(ModelWeights w, Kind kind) {
    IdentityHashMap<Tensor, Tensor> done = new IdentityHashMap<>();
    UnaryOperator<Tensor> q =
        t ->
            done.computeIfAbsent(
                t,
                x -> {
                  boolean blocks = kind.type() == DType.Q8_0 || kind.type() == DType.Q4_0;
                  if (blocks && x.cols() % 32 != 0) {
                    return x;
                  }
                  return quantize(floats(x), x.rows(), x.cols(), kind);
                });
    List<LayerWeights> layers = new ArrayList<>();
    for (LayerWeights l : w.layers()) {
      layers.add(
          new LayerWeights(
              l.attnNorm(),
              q.apply(l.wq()),
              q.apply(l.wk()),
              q.apply(l.wv()),
              q.apply(l.wo()),
              l.qBias(),
              l.kBias(),
              l.vBias(),
              l.ffnNorm(),
              q.apply(l.wGate()),
              q.apply(l.wUp()),
              q.apply(l.wDown())));
    }
    Tensor out =
        w.output() == w.embedding()
            ? quantize(floats(w.output()), w.output().rows(), w.output().cols(), kind)
            : q.apply(w.output());
    return new ModelWeights(w.embedding(), layers, w.outputNorm(), out);
  }
}
