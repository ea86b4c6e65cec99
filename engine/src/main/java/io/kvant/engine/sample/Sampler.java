package io.kvant.engine.sample;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Chooses the next token of one request from its logits.
 *
 * <p>Order of operations (the one vLLM and Hugging Face use): penalties on the raw logits
 * (repetition, then presence and frequency), then temperature, then top-k, top-p and min-p
 * filtering, then a draw. Each request owns its sampler and its random generator, seeded from the
 * request, so what it draws does not depend on what else is batched with it.
 *
 * <p>Not thread-safe: one sampler per request, used by one thread at a time.
 */
public final class Sampler {
  private final SamplingParams params;
  private final SplittableRandom random;
  private final Map<Integer, Integer> outputCounts = new HashMap<>();
  private final Map<Integer, Boolean> seen = new HashMap<>();

  /**
   * @param promptTokens the prompt, which the repetition penalty also covers
   */
  public Sampler(SamplingParams params, int[] promptTokens) {
    this.params = params;
    this.random = new SplittableRandom(params.seed());
    for (int t : promptTokens) {
      seen.put(t, Boolean.TRUE);
    }
  }

  public SamplingParams params() {
    return params;
  }

  /**
   * Whether a backend that samples where the logits are can apply this sampler's rule: greedy,
   * temperature, top-k, top-p and min-p can; the penalties (which need the token history) keep
   * sampling on the host.
   */
  public boolean onDeviceCapable() {
    return (params.repetitionPenalty() == 0f || params.repetitionPenalty() == 1f)
        && params.presencePenalty() == 0f
        && params.frequencyPenalty() == 0f;
  }

  /**
   * This step's rule for sampling on the device, with a seed drawn from this sampler's own
   * generator (so a seeded request is reproducible on the same backend). Call {@link
   * #recordSampled} with the token the device chose.
   */
  public io.kvant.engine.forward.DeviceSampling nextDeviceRule() {
    float topP = params.topP() == 0f ? 1f : params.topP();
    return new io.kvant.engine.forward.DeviceSampling(
        params.temperature(), params.topK(), topP, params.minP(), random.nextLong());
  }

  /** Records a token that was sampled elsewhere (on the device) as generated. */
  public void recordSampled(int token) {
    accept(token);
  }

  /** Records a generated token (for the penalties). Called by {@link #sample} itself. */
  void accept(int token) {
    outputCounts.merge(token, 1, Integer::sum);
    seen.put(token, Boolean.TRUE);
  }

  /**
   * Picks a token from {@code vocab} logits at {@code logits[off ..]} (the array is not modified)
   * and records it as generated.
   */
  public int sample(float[] logits, int off, int vocab) {
    float[] l = Arrays.copyOfRange(logits, off, off + vocab);
    applyPenalties(l);
    int token = params.greedy() ? argmax(l) : draw(l);
    accept(token);
    return token;
  }

  private void applyPenalties(float[] l) {
    float rep = params.repetitionPenalty();
    if (rep != 0f && rep != 1f) {
      for (Integer t : seen.keySet()) {
        if (t >= 0 && t < l.length) {
          l[t] = l[t] > 0 ? l[t] / rep : l[t] * rep;
        }
      }
    }
    float presence = params.presencePenalty();
    float frequency = params.frequencyPenalty();
    if (presence != 0f || frequency != 0f) {
      for (Map.Entry<Integer, Integer> e : outputCounts.entrySet()) {
        int t = e.getKey();
        if (t >= 0 && t < l.length) {
          l[t] -= presence + frequency * e.getValue();
        }
      }
    }
  }

  /** Index of the largest value; the lowest index wins ties (so greedy output is deterministic). */
  public static int argmax(float[] l) {
    int best = 0;
    for (int i = 1; i < l.length; i++) {
      if (l[i] > l[best]) {
        best = i;
      }
    }
    return best;
  }

  private int draw(float[] l) {
    int n = l.length;
    float invT = 1f / params.temperature();
    float max = Float.NEGATIVE_INFINITY;
    for (float v : l) {
      max = Math.max(max, v);
    }
    double[] p = new double[n];
    double sum = 0;
    for (int i = 0; i < n; i++) {
      p[i] = Math.exp((l[i] - max) * invT);
      sum += p[i];
    }
    for (int i = 0; i < n; i++) {
      p[i] /= sum;
    }
    boolean filter =
        params.topK() > 0 && params.topK() < n
            || params.topP() > 0f && params.topP() < 1f
            || params.minP() > 0f;
    if (!filter) {
      return drawFrom(p, null, n);
    }
    int[] kept = KeptTokens.of(p, params.topK(), params.topP(), params.minP());
    return drawFrom(p, kept, kept.length);
  }

  private int drawFrom(double[] p, int[] candidates, int count) {
    double total = 0;
    for (int i = 0; i < count; i++) {
      total += p[candidates == null ? i : candidates[i]];
    }
    double r = random.nextDouble() * total;
    double acc = 0;
    for (int i = 0; i < count; i++) {
      int t = candidates == null ? i : candidates[i];
      acc += p[t];
      if (r < acc) {
        return t;
      }
    }
    return candidates == null ? count - 1 : candidates[count - 1];
  }

  /**
   * Natural-log probabilities of the {@code vocab} logits at {@code logits[off ..]} after
   * temperature (raw logits when greedy).
   */
  public float[] logprobs(float[] logits, int off, int vocab) {
    float t = params.greedy() ? 1f : params.temperature();
    float max = Float.NEGATIVE_INFINITY;
    for (int i = 0; i < vocab; i++) {
      max = Math.max(max, logits[off + i]);
    }
    double sum = 0;
    for (int i = 0; i < vocab; i++) {
      sum += Math.exp((logits[off + i] - max) / t);
    }
    double logZ = Math.log(sum);
    float[] out = new float[vocab];
    for (int i = 0; i < vocab; i++) {
      out[i] = (float) ((logits[off + i] - max) / t - logZ);
    }
    return out;
  }
}
