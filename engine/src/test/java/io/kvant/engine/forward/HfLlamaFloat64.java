package io.kvant.engine.forward;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * An independent float64 Llama written for tests from a Hugging Face folder as transformers reads
 * it: {@code config.json} for the hyper-parameters, {@code model.safetensors} parsed here (8-byte
 * header length, JSON header, F32 data; {@code __metadata__} aliases such as a tied {@code
 * model.embed_tokens.weight -> lm_head.weight}), and the forward pass of transformers'
 * LlamaForCausalLM: RMSNorm {@code x / sqrt(mean(x^2) + eps) * w}, rotary embeddings on pairs
 * {@code (i, i + d/2)} of each head ({@code rotate_half}), grouped-query attention with causal
 * softmax, SwiGLU MLP, final norm, {@code lm_head}. Everything is double; nothing of kvant's
 * loader, tensors or kernels is used. Slow and simple, for a model of a few hundred thousand
 * weights.
 */
final class HfLlamaFloat64 {
  final int dim;
  final int hidden;
  final int layers;
  final int heads;
  final int kvHeads;
  final int headDim;
  final int vocab;
  final double eps;
  final double theta;
  private final Map<String, double[]> w = new HashMap<>();

  private final double[][][] keys; // [layer][pos][kvDim]
  private final double[][][] values;
  private int pos;

  HfLlamaFloat64(Path dir, int maxPositions) throws IOException {
    JsonNode cfg = new ObjectMapper().readTree(dir.resolve("config.json").toFile());
    dim = cfg.get("hidden_size").asInt();
    hidden = cfg.get("intermediate_size").asInt();
    layers = cfg.get("num_hidden_layers").asInt();
    heads = cfg.get("num_attention_heads").asInt();
    kvHeads = cfg.path("num_key_value_heads").asInt(heads);
    headDim = dim / heads;
    vocab = cfg.get("vocab_size").asInt();
    eps = cfg.get("rms_norm_eps").asDouble();
    theta = cfg.path("rope_theta").asDouble(10000);
    readSafetensors(dir.resolve("model.safetensors"));
    if (!w.containsKey("lm_head.weight") && cfg.path("tie_word_embeddings").asBoolean(false)) {
      w.put("lm_head.weight", w.get("model.embed_tokens.weight"));
    }
    keys = new double[layers][maxPositions][kvHeads * headDim];
    values = new double[layers][maxPositions][kvHeads * headDim];
  }

  private void readSafetensors(Path file) throws IOException {
    byte[] all = Files.readAllBytes(file);
    ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
    int headerLen = (int) b.getLong();
    JsonNode header = new ObjectMapper().readTree(new String(all, 8, headerLen, "UTF-8"));
    int base = 8 + headerLen;
    for (Map.Entry<String, JsonNode> e : header.properties()) {
      if (e.getKey().equals("__metadata__")) {
        continue;
      }
      if (!e.getValue().get("dtype").asText().equals("F32")) {
        throw new IOException(e.getKey() + ": only F32 here");
      }
      int from = e.getValue().get("data_offsets").get(0).asInt();
      int to = e.getValue().get("data_offsets").get(1).asInt();
      double[] v = new double[(to - from) / 4];
      for (int i = 0; i < v.length; i++) {
        v[i] = b.getFloat(base + from + 4 * i);
      }
      w.put(e.getKey(), v);
    }
    JsonNode meta = header.path("__metadata__");
    for (Map.Entry<String, JsonNode> e : meta.properties()) {
      if (!w.containsKey(e.getKey()) && w.containsKey(e.getValue().asText())) {
        w.put(e.getKey(), w.get(e.getValue().asText())); // a tied weight stored once
      }
    }
  }

  private double[] weight(String name) {
    double[] v = w.get(name);
    if (v == null) {
      throw new IllegalStateException("no tensor " + name);
    }
    return v;
  }

  /** Feeds {@code token} at the next position and returns the logits. */
  double[] step(int token) {
    double[] x = new double[dim];
    System.arraycopy(weight("model.embed_tokens.weight"), token * dim, x, 0, dim);
    int kvDim = kvHeads * headDim;
    for (int l = 0; l < layers; l++) {
      String p = "model.layers." + l + ".";
      double[] h = rmsNorm(x, weight(p + "input_layernorm.weight"));
      double[] q = matvec(weight(p + "self_attn.q_proj.weight"), h, dim);
      double[] k = matvec(weight(p + "self_attn.k_proj.weight"), h, kvDim);
      double[] v = matvec(weight(p + "self_attn.v_proj.weight"), h, kvDim);
      rope(q, heads);
      rope(k, kvHeads);
      keys[l][pos] = k;
      values[l][pos] = v;
      double[] att = new double[dim];
      int group = heads / kvHeads;
      for (int hd = 0; hd < heads; hd++) {
        int kh = hd / group;
        double[] scores = new double[pos + 1];
        double max = Double.NEGATIVE_INFINITY;
        for (int t = 0; t <= pos; t++) {
          double s = 0;
          for (int i = 0; i < headDim; i++) {
            s += q[hd * headDim + i] * keys[l][t][kh * headDim + i];
          }
          scores[t] = s / Math.sqrt(headDim);
          max = Math.max(max, scores[t]);
        }
        double sum = 0;
        for (int t = 0; t <= pos; t++) {
          scores[t] = Math.exp(scores[t] - max);
          sum += scores[t];
        }
        for (int t = 0; t <= pos; t++) {
          for (int i = 0; i < headDim; i++) {
            att[hd * headDim + i] += scores[t] / sum * values[l][t][kh * headDim + i];
          }
        }
      }
      double[] o = matvec(weight(p + "self_attn.o_proj.weight"), att, dim);
      for (int i = 0; i < dim; i++) {
        x[i] += o[i];
      }
      double[] h2 = rmsNorm(x, weight(p + "post_attention_layernorm.weight"));
      double[] gate = matvec(weight(p + "mlp.gate_proj.weight"), h2, hidden);
      double[] up = matvec(weight(p + "mlp.up_proj.weight"), h2, hidden);
      for (int i = 0; i < hidden; i++) {
        gate[i] = gate[i] / (1 + Math.exp(-gate[i])) * up[i];
      }
      double[] down = matvec(weight(p + "mlp.down_proj.weight"), gate, dim);
      for (int i = 0; i < dim; i++) {
        x[i] += down[i];
      }
    }
    pos++;
    return matvec(weight("lm_head.weight"), rmsNorm(x, weight("model.norm.weight")), vocab);
  }

  /** {@code rotate_half} RoPE: pair {@code (i, i + d/2)} turned by {@code pos * theta^(-2i/d)}. */
  private void rope(double[] v, int n) {
    int half = headDim / 2;
    for (int hd = 0; hd < n; hd++) {
      for (int i = 0; i < half; i++) {
        double angle = pos * Math.pow(theta, -2.0 * i / headDim);
        double a = v[hd * headDim + i];
        double b = v[hd * headDim + half + i];
        v[hd * headDim + i] = a * Math.cos(angle) - b * Math.sin(angle);
        v[hd * headDim + half + i] = b * Math.cos(angle) + a * Math.sin(angle);
      }
    }
  }

  private double[] rmsNorm(double[] x, double[] weight) {
    double ss = 0;
    for (double v : x) {
      ss += v * v;
    }
    double inv = 1 / Math.sqrt(ss / x.length + eps);
    double[] out = new double[x.length];
    for (int i = 0; i < x.length; i++) {
      out[i] = x[i] * inv * weight[i];
    }
    return out;
  }

  /** {@code W x} for a row-major {@code [rows, x.length]} matrix (torch Linear layout). */
  private static double[] matvec(double[] m, double[] x, int rows) {
    double[] out = new double[rows];
    for (int r = 0; r < rows; r++) {
      double s = 0;
      for (int c = 0; c < x.length; c++) {
        s += m[r * x.length + c] * x[c];
      }
      out[r] = s;
    }
    return out;
  }

  static int argmax(double[] v) {
    int best = 0;
    for (int i = 1; i < v.length; i++) {
      if (v[i] > v[best]) {
        best = i;
      }
    }
    return best;
  }
}
