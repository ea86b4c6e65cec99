package io.kvant.engine.forward;

/**
 * The sampling rule a backend applies where the logits are (see {@link
 * ForwardPass#forwardAndSample}): greedy when {@code temperature <= 0}, otherwise softmax at {@code
 * temperature} restricted to the {@code topK} largest logits ({@code topK <= 0}: all), then to the
 * smallest set of the most likely of those whose share of their mass reaches {@code topP} ({@code
 * >= 1}: all), then to the tokens at least {@code minP} times as likely as the most likely ({@code
 * 0}: all); ties at a threshold kept. Drawn with a uniform number derived from {@code seed} (the
 * caller derives a fresh seed per step, so a seeded request is reproducible on the same backend).
 */
public record DeviceSampling(float temperature, int topK, float topP, float minP, long seed) {
  public DeviceSampling {
    if (Float.isNaN(temperature) || Float.isNaN(topP) || topP <= 0f) {
      throw new IllegalArgumentException(
          "temperature must be a number and top_p in (0, 1], got " + temperature + ", " + topP);
    }
    if (!(minP >= 0f && minP <= 1f)) {
      throw new IllegalArgumentException("min_p must be in [0, 1], got " + minP);
    }
  }

  /** Without min-p. */
  public DeviceSampling(float temperature, int topK, float topP, long seed) {
    this(temperature, topK, topP, 0f, seed);
  }

  /** Greedy (argmax, lowest id among ties). */
  public static DeviceSampling greedy() {
    return new DeviceSampling(0f, 0, 1f, 0L);
  }
}
