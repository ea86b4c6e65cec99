package io.kvant.perf.synth;

import io.kvant.engine.format.gguf.GgmlType;
import io.kvant.engine.model.Role;
import io.kvant.engine.model.TensorNames;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensors;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Writes a Llama-architecture GGUF file with seeded random weights of a given {@link ModelShape}:
 * what llama.cpp's converter would write for a real model of that shape, with the same key and
 * tensor names ({@code general.architecture = llama}, {@code llama.*} hyper-parameters, {@code
 * token_embd}, {@code blk.N.attn_q} ... {@code ffn_down}, {@code output_norm}, {@code output} when
 * untied), a {@link SyntheticVocab} SentencePiece tokenizer and {@code general.alignment = 32}.
 *
 * <p>Weights are approximately N(0, 0.02) ({@link SplitMix64#nextGaussianApprox}); norm vectors are
 * ones (F32, as llama.cpp keeps them). Every row of every matrix has its own generator seeded from
 * (seed, tensor index, row), so a file is a pure function of (shape, type, seed) whatever the
 * thread count. Data is generated in chunks of rows and streamed to disk: memory use is a few
 * chunks, not the file.
 */
public final class SynthModelWriter {
  /** Standard deviation of the weights. */
  public static final float STD = 0.02f;

  private static final int CHUNK_BYTES = 8 << 20;

  private final ModelShape shape;
  private final WeightType type;
  private final long seed;
  private final int threads;

  /** When set, matrices are written as F32 holding this type's decoded values. */
  private final WeightType roundedThrough;

  /**
   * @param threads generator threads (at least 1)
   */
  public SynthModelWriter(ModelShape shape, WeightType type, long seed, int threads) {
    this(shape, type, seed, threads, null);
  }

  private SynthModelWriter(
      ModelShape shape, WeightType type, long seed, int threads, WeightType roundedThrough) {
    if (threads < 1) {
      throw new IllegalArgumentException("threads must be >= 1, got " + threads);
    }
    this.shape = shape;
    this.type = type;
    this.seed = seed;
    this.threads = threads;
    this.roundedThrough = roundedThrough;
  }

  /**
   * The F32 twin of this writer's model: the same (shape, seed), every matrix written as F32
   * holding exactly the values kvant decodes from this writer's quantized file, so the two files
   * must compute the same thing.
   */
  public SynthModelWriter dequantizedTwin() {
    return new SynthModelWriter(shape, WeightType.F32, seed, threads, type);
  }

  /** One declared tensor: ggml dims are {@code [cols, rows]}; a vector has {@code rows == 1}. */
  private record Spec(String name, int rows, int cols, boolean norm) {}

  private List<Spec> specs() {
    int dim = shape.dim();
    List<Spec> out = new ArrayList<>();
    out.add(new Spec(TensorNames.EMBEDDING, shape.vocab(), dim, false));
    for (int l = 0; l < shape.layers(); l++) {
      out.add(new Spec(TensorNames.attnNorm(l), 1, dim, true));
      out.add(new Spec(TensorNames.matrix(l, Role.Q), dim, dim, false));
      out.add(new Spec(TensorNames.matrix(l, Role.K), shape.kvDim(), dim, false));
      out.add(new Spec(TensorNames.matrix(l, Role.V), shape.kvDim(), dim, false));
      out.add(new Spec(TensorNames.matrix(l, Role.O), dim, dim, false));
      out.add(new Spec(TensorNames.ffnNorm(l), 1, dim, true));
      out.add(new Spec(TensorNames.matrix(l, Role.GATE), shape.hidden(), dim, false));
      out.add(new Spec(TensorNames.matrix(l, Role.UP), shape.hidden(), dim, false));
      out.add(new Spec(TensorNames.matrix(l, Role.DOWN), dim, shape.hidden(), false));
    }
    out.add(new Spec(TensorNames.OUTPUT_NORM, 1, dim, true));
    if (!shape.tied()) {
      out.add(new Spec(TensorNames.OUTPUT, shape.vocab(), dim, false));
    }
    return out;
  }

  /** The header: metadata and tensor declarations, in llama.cpp's names. */
  GgufWriter header() {
    SyntheticVocab vocab = SyntheticVocab.of(shape.vocab());
    GgufWriter w = new GgufWriter();
    w.putString("general.architecture", "llama");
    String kind = roundedThrough == null ? type.name() : roundedThrough.name() + "-dequantized-F32";
    w.putString("general.name", shape.name() + "-synthetic-" + kind.toLowerCase());
    w.alignment(32);
    w.putU32("general.file_type", type.fileType());
    if (type.ggml().isQuantized()) {
      w.putU32("general.quantization_version", 2);
    }
    w.putU32("llama.vocab_size", shape.vocab());
    w.putU32("llama.context_length", shape.contextLength());
    w.putU32("llama.embedding_length", shape.dim());
    w.putU32("llama.block_count", shape.layers());
    w.putU32("llama.feed_forward_length", shape.hidden());
    w.putU32("llama.rope.dimension_count", shape.headSize());
    w.putU32("llama.attention.head_count", shape.heads());
    w.putU32("llama.attention.head_count_kv", shape.kvHeads());
    w.putF32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    w.putF32("llama.rope.freq_base", shape.ropeTheta());
    w.putString("tokenizer.ggml.model", "llama");
    w.putStringArray("tokenizer.ggml.tokens", vocab.tokens());
    w.putF32Array("tokenizer.ggml.scores", vocab.scores());
    w.putI32Array("tokenizer.ggml.token_type", vocab.types());
    w.putU32("tokenizer.ggml.bos_token_id", 1);
    w.putU32("tokenizer.ggml.eos_token_id", 2);
    w.putU32("tokenizer.ggml.unknown_token_id", 0);
    w.putBool("tokenizer.ggml.add_bos_token", true);
    w.putBool("tokenizer.ggml.add_eos_token", false);
    w.putBool("tokenizer.ggml.add_space_prefix", true);
    for (Spec s : specs()) {
      if (s.norm) {
        w.tensor(s.name, GgmlType.F32, s.cols);
      } else {
        w.tensor(s.name, type.ggml(), s.cols, s.rows);
      }
    }
    return w;
  }

  /** The size of the file {@link #write} produces, in bytes. */
  public long fileSize() {
    return header().fileSize();
  }

  /**
   * Writes the file, replacing any file at {@code out}.
   *
   * @param progress called after each tensor with (bytes written so far, total bytes)
   */
  public void write(Path out, Progress progress) throws IOException {
    GgufWriter w = header();
    List<Spec> specs = specs();
    long total = w.fileSize();
    long done = 0;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try (GgufWriter.DataSink sink = w.open(out)) {
      for (int i = 0; i < specs.size(); i++) {
        Spec s = specs.get(i);
        if (s.norm) {
          ByteBuffer ones = ByteBuffer.allocate(s.cols * 4).order(ByteOrder.LITTLE_ENDIAN);
          for (int j = 0; j < s.cols; j++) {
            ones.putFloat(1f);
          }
          sink.write(ones.flip());
        } else {
          writeMatrix(sink, pool, i, s);
        }
        done += w.tensorBytes(i);
        progress.update(done, total);
      }
    } finally {
      pool.shutdownNow();
    }
  }

  /** Receives progress of a {@link #write}. */
  @FunctionalInterface
  public interface Progress {
    void update(long bytesDone, long bytesTotal);
  }

  private void writeMatrix(GgufWriter.DataSink sink, ExecutorService pool, int index, Spec s)
      throws IOException {
    long rowBytes = rowBytes(s.cols);
    int chunkRows = (int) Math.max(1, Math.min(s.rows, CHUNK_BYTES / rowBytes));
    for (int start = 0; start < s.rows; start += chunkRows) {
      int end = Math.min(s.rows, start + chunkRows);
      ByteBuffer buf =
          ByteBuffer.allocate((int) ((end - start) * rowBytes)).order(ByteOrder.LITTLE_ENDIAN);
      int per = (end - start + threads - 1) / threads;
      List<Future<?>> parts = new ArrayList<>();
      for (int a = start; a < end; a += per) {
        int from = a;
        int to = Math.min(end, a + per);
        int base = start;
        parts.add(
            pool.submit(
                () -> {
                  float[] x = new float[s.cols];
                  ByteBuffer view = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
                  view.position((int) ((from - base) * rowBytes));
                  for (int r = from; r < to; r++) {
                    fillRow(index, r, x);
                    if (roundedThrough != null) {
                      roundTrip(roundedThrough, x);
                    }
                    Quantize.row(type, x, s.cols, view);
                  }
                }));
      }
      for (Future<?> f : parts) {
        try {
          f.get();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IOException("interrupted while generating weights", e);
        } catch (ExecutionException e) {
          throw new IOException("weight generation failed", e.getCause());
        }
      }
      sink.write(buf.position(0).limit(buf.capacity()));
    }
  }

  private long rowBytes(int cols) {
    return (long) cols / type.ggml().blockSize() * type.ggml().bytesPerBlock();
  }

  /** Replaces {@code x} by what kvant decodes from its encoding as {@code through}. */
  static void roundTrip(WeightType through, float[] x) {
    ByteBuffer enc =
        ByteBuffer.allocate((int) through.ggml().byteSize(x.length)).order(ByteOrder.LITTLE_ENDIAN);
    Quantize.row(through, x, x.length, enc);
    Tensors.of(DType.valueOf(through.name()), 1, x.length, MemorySegment.ofArray(enc.array()))
        .dequantizeRow(0, x, 0);
  }

  /** The float values of row {@code row} of tensor {@code index}, before encoding. */
  void fillRow(int index, int row, float[] x) {
    SplitMix64 rng =
        new SplitMix64(SplitMix64.mix(seed ^ SplitMix64.mix(((long) index << 32) | row)));
    for (int j = 0; j < x.length; j++) {
      x[j] = STD * rng.nextGaussianApprox();
    }
  }
}
