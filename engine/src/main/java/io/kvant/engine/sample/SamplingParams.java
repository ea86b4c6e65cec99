package io.kvant.engine.sample;

/**
 * How the next token is chosen. The zero value of every field means "off", so {@link #GREEDY} is
 * all zeros. Ranges are those of the {@code kvant.v1.SamplingParams} proto message.
 *
 * @param temperature softmax temperature, [0, 100]; 0 is greedy
 * @param topK keep the k most likely tokens, >= 0; 0 is off
 * @param topP nucleus mass, [0, 1]: after top-k, a share of the mass top-k kept; 0 or 1 is off
 * @param minP drop tokens below minP times the top probability, [0, 1]; 0 is off
 * @param repetitionPenalty CTRL-style penalty on prompt and output tokens, [0, 10]; 0 or 1 is off
 * @param presencePenalty subtracted once per distinct generated token, [-2, 2]
 * @param frequencyPenalty subtracted per occurrence of a generated token, [-2, 2]
 * @param seed random seed; the same seed gives the same tokens for the same inputs
 */
public record SamplingParams(
    float temperature,
    int topK,
    float topP,
    float minP,
    float repetitionPenalty,
    float presencePenalty,
    float frequencyPenalty,
    long seed) {

  public static final SamplingParams GREEDY = new SamplingParams(0, 0, 0, 0, 0, 0, 0, 0);

  public SamplingParams {
    check("temperature", temperature, 0, 100);
    if (topK < 0) {
      throw new IllegalArgumentException("top_k: must be >= 0, got " + topK);
    }
    check("top_p", topP, 0, 1);
    check("min_p", minP, 0, 1);
    check("repetition_penalty", repetitionPenalty, 0, 10);
    check("presence_penalty", presencePenalty, -2, 2);
    check("frequency_penalty", frequencyPenalty, -2, 2);
  }

  private static void check(String field, float value, float lo, float hi) {
    if (!(value >= lo && value <= hi)) {
      throw new IllegalArgumentException(
          field + ": must be in [" + fmt(lo) + ", " + fmt(hi) + "], got " + value);
    }
  }

  private static String fmt(float f) {
    return f == (int) f ? Integer.toString((int) f) : Float.toString(f);
  }

  /** True when the choice is the argmax (temperature 0). */
  public boolean greedy() {
    return temperature == 0f;
  }

  /** A copy with another seed. */
  public SamplingParams withSeed(long newSeed) {
    return new SamplingParams(
        temperature,
        topK,
        topP,
        minP,
        repetitionPenalty,
        presencePenalty,
        frequencyPenalty,
        newSeed);
  }
}
