package io.kvant.engine.forward;

import io.kvant.engine.kv.EvictionPolicyKind;
import io.kvant.engine.kv.KvCacheConfig;
import io.kvant.engine.kv.KvCacheManager;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.kv.KvStore;
import io.kvant.engine.kv.KvStoreFactory;
import java.util.SplittableRandom;

/**
 * One thread, one query row: the attention of every head of every layer over {@code len}
 * positions of the paged KV store (what {@code Transformer} runs per decode token), timed by part:
 * key scores, softmax, weighted values. The softmax runs as the engine does ({@link Softmax}) and,
 * alternated with it, as the scalar loop it replaced ({@code Math.exp} per score), so both are
 * measured in one process. Geometry: the SmolLM2-135M shape (30 layers, 9 query heads on 3 KV
 * heads of 64); keys and values random, written through the store.
 *
 * <pre>
 * ./mvnw -B -o -q package -pl engine -DskipTests
 * javac --add-modules jdk.incubator.vector -cp engine/target/classes -d /tmp/att tools/cpu/AttentionTime.java
 * java --add-modules jdk.incubator.vector -cp engine/target/classes:/tmp/att \
 *     io.kvant.engine.forward.AttentionTime 2048 16 [F32|INT8|FP8_E4M3]   # positions, block, KV type
 * </pre>
 *
 * The INT8 and FP8 stores use the CPU's default encodings ({@code kivi}, {@code per-token-mse}), as
 * {@code serve --kv int8|fp8} does.
 *
 * (Compiled beside the engine's classes rather than run as a source file: {@link Softmax} is
 * package-private, and a source-launched class lives in a loader of its own.)
 */
public class AttentionTime {
  public static void main(String[] a) {
    int layers = 30;
    int heads = 9;
    int kvHeads = 3;
    int hs = 64;
    int len = Integer.parseInt(a[0]);
    int blockSize = Integer.parseInt(a[1]);
    KvCacheType type = a.length > 2 ? KvCacheType.valueOf(a[2]) : KvCacheType.F32;
    KvGeometry g = new KvGeometry(layers, kvHeads, hs);
    long blocks = (len + blockSize - 1) / blockSize + 2;
    KvCacheManager kv =
        new KvCacheManager(
            g,
            new KvCacheConfig(
                type,
                blockSize,
                blocks * blockSize * g.bytesPerToken(type) * 2,
                EvictionPolicyKind.TINY_LFU,
                false),
            KvStoreFactory.cpuDefault());
    int seq = kv.open(kv.findCachedPrefix(new int[] {1}, 1, "t"), len);
    KvStore st = kv.store();
    SplittableRandom r = new SplittableRandom(1);
    float[] k = new float[kvHeads * hs];
    float[] v = new float[kvHeads * hs];
    for (int l = 0; l < layers; l++) {
      for (int p = 0; p < len; p++) {
        for (int i = 0; i < k.length; i++) {
          k[i] = (float) r.nextGaussian();
          v[i] = (float) r.nextGaussian();
        }
        st.write(seq, l, p, k, 0, v, 0);
      }
    }
    float[] q = new float[heads * hs];
    for (int i = 0; i < q.length; i++) {
      q[i] = (float) r.nextGaussian();
    }
    float[] scores = new float[len];
    float[] att = new float[heads * hs];
    float scale = (float) (1.0 / Math.sqrt(hs));
    int group = heads / kvHeads;
    int reps = 4;
    for (int round = 0; round < 8; round++) {
      for (int vector = 1; vector >= 0; vector--) {
        long tS = 0;
        long tM = 0;
        long tV = 0;
        for (int rep = 0; rep < reps; rep++) {
          for (int l = 0; l < layers; l++) {
            for (int h = 0; h < heads; h++) {
              long t0 = System.nanoTime();
              st.keyScores(seq, l, h / group, q, h * hs, len, scores);
              long t1 = System.nanoTime();
              if (vector == 1) {
                Softmax.inPlace(scores, 0, len, scale);
              } else {
                scalarSoftmax(scores, len, scale);
              }
              long t2 = System.nanoTime();
              java.util.Arrays.fill(att, h * hs, h * hs + hs, 0f);
              st.addWeightedValues(seq, l, h / group, scores, len, att, h * hs);
              tS += t1 - t0;
              tM += t2 - t1;
              tV += System.nanoTime() - t2;
            }
          }
        }
        System.out.printf(
            "round %d, %s softmax: %.2f ms per token (scores %.2f, softmax %.2f, values %.2f)%n",
            round,
            vector == 1 ? "vector" : "scalar",
            (tS + tM + tV) / 1e6 / reps,
            tS / 1e6 / reps,
            tM / 1e6 / reps,
            tV / 1e6 / reps);
      }
    }
  }

  /** The loop the engine ran before {@link Softmax}. */
  private static void scalarSoftmax(float[] s, int len, float scale) {
    float max = Float.NEGATIVE_INFINITY;
    for (int t = 0; t < len; t++) {
      s[t] *= scale;
      max = Math.max(max, s[t]);
    }
    float sum = 0f;
    for (int t = 0; t < len; t++) {
      float e = (float) Math.exp(s[t] - max);
      s[t] = e;
      sum += e;
    }
    float inv = 1f / sum;
    for (int t = 0; t < len; t++) {
      s[t] *= inv;
    }
  }
}
