package io.kvant.engine.kv;

/**
 * How a quantized KV cache ({@link KvCacheType#INT8}, {@link KvCacheType#FP8_E4M3}) encodes keys
 * and values: where the scales live ({@link Scaling}, for keys and for values) and whether each
 * head vector is rotated first. Every encoding stores one one-byte code per element at the same
 * place (per layer and KV head, a block's {@code blockSize} head vectors one after the other); only
 * the scales differ.
 *
 * <p>Notation: {@code n = headSize}; {@code x} one head vector as the forward pass writes it (keys
 * after RoPE); {@code M = 127} (INT8) or {@code 448} (E4M3); all arithmetic in F32 in the order
 * written. Coding a float {@code y} against a scale {@code s}: {@code code(y, s) = 0} when {@code s
 * == 0}, else INT8 {@code clamp(round(y / s), -127, 127)} with {@code round(z) = floor(z + 0.5)}
 * (Java's {@code Math.round}), E4M3 {@code e4m3(y / s)}, round to nearest even, saturating at ±448
 * (never NaN). Decoding: {@code x_i ≈ s * value(code_i)}. {@link #PER_TOKEN} keeps the encoder it
 * had before: it multiplies by {@code M / amax} instead of dividing by {@code s}.
 */
public enum KvEncoding {
  /**
   * Keys and values per token: {@code amax = max |x_i|} over the head vector; INT8 {@code scale =
   * amax / 127}, {@code q_i = clamp(round(x_i * (127 / amax)), -127, 127)}; E4M3 {@code scale =
   * amax / 448}, {@code q_i = e4m3(x_i * (448 / amax))}; an all-zero vector gets scale 0 and codes
   * 0. One F32 scale per (layer, KV head, token) for K and one for V. The CUDA backend implements
   * this one, {@link #PER_TOKEN_MSE}, {@link #KIVI} and {@link #KIVI_MSE} ({@code kv_append}), with
   * the same codes and scales bit for bit.
   */
  PER_TOKEN(Scaling.TOKEN, Scaling.TOKEN, false),
  /**
   * The head vector rotated first by the orthonormal Walsh-Hadamard matrix {@code H_n / sqrt(n)}
   * ({@code n} a power of two; {@code H_1 = [1]}, {@code H_2m = [[H_m, H_m], [H_m, -H_m]]}, so
   * entry {@code (i, j)} is {@code (-1)^popcount(i & j) / sqrt(n)}; computed by {@link #rotate}),
   * then encoded exactly as {@link #PER_TOKEN}: {@code y = H x / sqrt(n)}, codes and scale from
   * {@code y}.
   *
   * <p>Why: with 8-wide heads (stories260K) one outlier channel sets the absmax of the whole vector
   * and the other channels get a few levels only; the rotation spreads every channel's energy over
   * all of them (QuaRot's observation). It needs no calibration and keeps tokens independent.
   *
   * <p>Reading (every rotated encoding): the matrix is symmetric and its own inverse, so {@code q .
   * x = (H q / sqrt(n)) . y}: scores rotate the query once per (query, head) and then read codes as
   * the unrotated encoding does; values are summed as stored and the head's sum is rotated back
   * once with the same transform.
   */
  HADAMARD(Scaling.TOKEN, Scaling.TOKEN, true),
  /**
   * Keys and values per token as {@link #PER_TOKEN}, but each vector's scale chosen by the squared
   * error it leaves ({@link Scaling#TOKEN_MSE}). Why: E4M3's error is relative to each value (3
   * mantissa bits), so {@code amax / 448} makes the largest element exact and leaves the next ones
   * up to 1/16 off; among scales within one octave above it, the one of least squared error keeps
   * the large elements (those that dominate scores and sums) close.
   */
  PER_TOKEN_MSE(Scaling.TOKEN_MSE, Scaling.TOKEN_MSE, false),
  /** {@link #PER_TOKEN_MSE} of the rotated vectors (rotation as {@link #HADAMARD}). */
  HADAMARD_MSE(Scaling.TOKEN_MSE, Scaling.TOKEN_MSE, true),
  /**
   * KIVI-style: keys per channel within each block ({@link Scaling#BLOCK_CHANNEL}), values per
   * token as {@link #PER_TOKEN}. Why per channel for keys: key outliers sit in fixed channels
   * (KIVI's observation), so one scale per channel gives every other channel its own full range.
   */
  KIVI(Scaling.BLOCK_CHANNEL, Scaling.TOKEN, false),
  /** {@link #KIVI} of the rotated vectors (rotation as {@link #HADAMARD}). */
  KIVI_HADAMARD(Scaling.BLOCK_CHANNEL, Scaling.TOKEN, true),
  /** {@link #KIVI}'s keys, values per token by {@link Scaling#TOKEN_MSE}. */
  KIVI_MSE(Scaling.BLOCK_CHANNEL, Scaling.TOKEN_MSE, false),
  /**
   * Keys and values with static per-(layer, KV head, channel) scales from calibration ({@link
   * Scaling#STATIC_CHANNEL}, {@link KvScales}): no scale is stored with a token.
   */
  STATIC(Scaling.STATIC_CHANNEL, Scaling.STATIC_CHANNEL, false),
  /**
   * {@link #STATIC} of the rotated vectors; the calibration's maxima are those of the rotated
   * vectors ({@link KvScales#rotated()}).
   */
  STATIC_HADAMARD(Scaling.STATIC_CHANNEL, Scaling.STATIC_CHANNEL, true),
  /**
   * {@link #PER_TOKEN_MSE} of keys centered in the frame before RoPE, with calibrated means ({@link
   * KvScales#keyMean()}, {@link KvScales#keyRope()}): {@code m} per (layer, KV head, channel) is
   * the mean of {@code R(-t) k_t} over the calibration's keys, {@code R(t)} the rotation the
   * forward pass gives a key at position {@code t} ({@link KeyRope}: the same F32 cosines and
   * sines). Writing position {@code t}: {@code r = R(t) m} in F32 (per pair {@code (a, b)}: {@code
   * r_a = m_a c - m_b s}, {@code r_b = m_a s + m_b c}), {@code y_i = k_i - r_i}, and {@code y}
   * encoded by {@link Scaling#TOKEN_MSE}. Reading adds the offset back per position: {@code score_t
   * = scale_t * sum_i q_i value(code_i) + sum_pairs (A cos + B sin)} with {@code A = q_a m_a + q_b
   * m_b}, {@code B = q_b m_a - q_a m_b} (once per call), which is {@code q . (y_t + R(t) m) = q .
   * k_t} in real arithmetic: centering is exact; only {@code y} is rounded to codes. Values as
   * {@link #PER_TOKEN_MSE}, not centered.
   *
   * <p>Why: E4M3's error is relative to each element, so it grows with what is stored; keys carry a
   * large offset per channel (on stories260K 52-87% of their energy), which is a constant vector
   * before RoPE and a rotating one after it. Subtracting the rotated mean leaves only the keys'
   * spread to round (stories260K: key energy 3 to 18 times smaller). A constant mean after RoPE
   * removes it only for the slow pairs, and the values' offsets are small (both measured,
   * perf/RESULTS.md). Needs calibration, so {@code eval} measures it and the server refuses it, as
   * {@link #STATIC}.
   */
  CENTERED_MSE(Scaling.TOKEN_MSE, Scaling.TOKEN_MSE, false, true, false),
  /**
   * {@link #CENTERED_MSE} whose key scale is chosen by the error the scores see rather than the
   * error of the vector: among {@link Scaling#TOKEN_MSE}'s candidates (of {@code y}), the one of
   * least {@code err_k = sum_i d_i * (sum_j W_ij d_j)} (F32, increasing {@code i} and {@code j};
   * the first on ties), {@code W} the calibrated second moment {@code E[q q^T]} of the queries that
   * read the (layer, KV head) ({@link KvScales#queryMoment()}). Codes, values and reading as {@link
   * #CENTERED_MSE}.
   *
   * <p>Why: a score's error is {@code q . d}, whose mean square over the queries is {@code d^T W
   * d}; queries are far from isotropic, so the plain squared error weighs channels the scores
   * barely read as much as those they read most. The scale is the only choice the encoder has, and
   * this picks it for the scores. Costs {@code headSize^2} per candidate at write.
   */
  CENTERED_QMSE(Scaling.TOKEN_MSE, Scaling.TOKEN_MSE, false, true, true);

  /** Where the scales of keys or of values live. */
  public enum Scaling {
    /**
     * One F32 scale per (layer, KV head, token), from the head vector's absmax ({@link
     * #PER_TOKEN}'s rules); stored beside the token's codes in its block.
     */
    TOKEN,
    /**
     * One F32 scale per (layer, KV head, token), stored as {@link #TOKEN}'s, chosen by search:
     * {@code amax = max |x_i|} (an all-zero vector: scale 0, codes 0), {@code s_0 = amax / M},
     * candidates {@code s_k = s_0 * f_k} for {@code k = 0 .. 31} with {@code f_k = (float)
     * 2^(k/32)}; for each, {@code err_k = sum_i d_i * d_i} in F32 in increasing {@code i}, {@code
     * d_i = x_i - s_k * value(code(x_i, s_k))}; the scale is the {@code s_k} of least {@code err_k}
     * (the first on ties), codes {@code code(x_i, s_k)}. All candidates are {@code >= s_0}, so
     * nothing clips.
     */
    TOKEN_MSE,
    /**
     * One F32 scale per (layer, KV head, block, channel), kept by the block as its tokens arrive:
     * the block's first slot sets {@code s_c = |x_c| / M} for every channel {@code c} and codes
     * {@code code(x_c, s_c)}. A later slot {@code t}, per channel: with {@code a = |x_c|}, if
     * {@code a > s_c * M} the channel grows: {@code s' = a / M}; when {@code s_c > 0}, every
     * earlier slot {@code u < t} of the block is re-coded from its code, {@code r = s_c / s'}, INT8
     * {@code code_u = round(code_u * r)}, E4M3 {@code code_u = e4m3(value(code_u) * r)}; then
     * {@code s_c = s'}. Finally {@code code_t = code(x_c, s_c)}. A write at slot 0 starts the block
     * afresh (the slots after it are written again before they are read, as positions are written
     * in order).
     *
     * <p>Why re-scale rather than fix the scale from the first tokens with headroom: a fixed scale
     * clips a later outlier (the very case per-channel scales are for) or wastes levels on
     * headroom; re-scaling costs a second rounding only on the channels whose maximum grew (at most
     * {@code s'} of error instead of {@code s' / 2}), and no float residual per sequence (KIVI
     * keeps one). A full block never changes again, so prefix sharing is as before.
     */
    BLOCK_CHANNEL,
    /**
     * One F32 scale per (layer, KV head, channel), fixed: {@code s_c = amax_c / M} with {@code
     * amax_c} the calibration's maximum of {@code |x_c|} ({@link KvScales}); {@code code_t =
     * code(x_c, s_c)}, which clips what exceeds the calibration's range.
     */
    STATIC_CHANNEL
  }

  private final Scaling keys;
  private final Scaling values;
  private final boolean rotates;
  private final boolean centersKeys;
  private final boolean weighsKeys;

  KvEncoding(Scaling keys, Scaling values, boolean rotates) {
    this(keys, values, rotates, false, false);
  }

  KvEncoding(
      Scaling keys, Scaling values, boolean rotates, boolean centersKeys, boolean weighsKeys) {
    this.keys = keys;
    this.values = values;
    this.rotates = rotates;
    this.centersKeys = centersKeys;
    this.weighsKeys = weighsKeys;
  }

  /**
   * The CPU's default encoding of {@code type} (what {@link KvStoreFactory#cpuDefault()} stores):
   * the best measured on the three real models (perf/RESULTS.md, "KV cache encodings"): {@link
   * #KIVI} for INT8 ({@link #KIVI_MSE} is as good, at 6 to 20 times the cost of a write), {@link
   * #PER_TOKEN_MSE} for E4M3, {@link #PER_TOKEN} (unused) for the float types. The centered
   * encodings ({@link #CENTERED_QMSE}) measure better on both types but need calibrated key means,
   * which a store made without a calibration pass does not have; {@link #cpuDefault(KvCacheType,
   * boolean)} picks them when the statistics are at hand.
   */
  public static KvEncoding cpuDefault(KvCacheType type) {
    return cpuDefault(type, false);
  }

  /**
   * The CPU's default encoding of {@code type} when calibrated key moments ({@link
   * KvScales#hasKeyMoments()}) are at hand or not: {@link #CENTERED_QMSE} for E4M3 with them (the
   * best measured, perf/RESULTS.md "Centered keys for FP8 KV": 99.69% / 99.63% / 100% top-1 against
   * 97.47% / 99.63% / 99.90% for {@link #PER_TOKEN_MSE}), otherwise as {@link
   * #cpuDefault(KvCacheType)}. INT8 keeps {@link #KIVI}: it already agrees 99.69% to 100% and costs
   * no statistics.
   */
  public static KvEncoding cpuDefault(KvCacheType type, boolean keyMoments) {
    return switch (type) {
      case INT8 -> KIVI;
      case FP8_E4M3 -> keyMoments ? CENTERED_QMSE : PER_TOKEN_MSE;
      case F32, F16 -> PER_TOKEN;
    };
  }

  /** Where the keys' scales live. */
  public Scaling keyScaling() {
    return keys;
  }

  /** Where the values' scales live. */
  public Scaling valueScaling() {
    return values;
  }

  /** Whether head vectors are rotated by the Walsh-Hadamard transform before they are encoded. */
  public boolean rotates() {
    return rotates;
  }

  /**
   * Whether keys are stored minus their calibrated mean rotated to their position ({@link
   * #CENTERED_MSE}).
   */
  public boolean centersKeys() {
    return centersKeys;
  }

  /**
   * Whether the keys' scale is chosen by the error weighted with the queries' calibrated second
   * moment ({@link #CENTERED_QMSE}).
   */
  public boolean weighsKeys() {
    return weighsKeys;
  }

  /**
   * Whether the encoding needs calibrated {@link KvScales}: the maxima of the static scales, or the
   * key means (and query moments) of the centered encodings ({@link KvScales#hasKeyMoments()}).
   */
  public boolean needsScales() {
    return keys == Scaling.STATIC_CHANNEL || values == Scaling.STATIC_CHANNEL || centersKeys;
  }

  /** The option's spelling: {@code per-token}, {@code hadamard}, {@code per-token-mse}, ... */
  public String optionName() {
    return name().toLowerCase(java.util.Locale.ROOT).replace('_', '-');
  }

  /** Parses {@link #optionName()}. */
  public static KvEncoding parse(String s) {
    for (KvEncoding e : values()) {
      if (e.optionName().equals(s.strip().toLowerCase(java.util.Locale.ROOT))) {
        return e;
      }
    }
    throw new IllegalArgumentException("must be one of " + names() + ", got '" + s + "'");
  }

  /** The option names, comma-separated. */
  public static String names() {
    StringBuilder b = new StringBuilder();
    for (KvEncoding e : values()) {
      b.append(b.isEmpty() ? "" : ", ").append(e.optionName());
    }
    return b.toString();
  }

  /**
   * In place: {@code x[off .. off+n) = H_n x / sqrt(n)} (the fast Walsh-Hadamard transform, {@code
   * n log n} additions; {@code n} a power of two). Its own inverse.
   */
  static void rotate(float[] x, int off, int n) {
    for (int h = 1; h < n; h <<= 1) {
      for (int i = 0; i < n; i += h << 1) {
        for (int j = i; j < i + h; j++) {
          float a = x[off + j];
          float b = x[off + j + h];
          x[off + j] = a + b;
          x[off + j + h] = a - b;
        }
      }
    }
    float norm = (float) (1.0 / Math.sqrt(n));
    for (int i = 0; i < n; i++) {
      x[off + i] *= norm;
    }
  }
}
