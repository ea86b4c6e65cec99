package io.kvant.quant.artifact;

import java.util.Locale;
import java.util.Objects;

/**
 * One tensor of a quantization bill of materials: how it was made and where its served form came
 * from. The one QBOM entry: {@code kvant quantize} writes these into {@code qbom.json}, the reload
 * agent into its {@code qbom.jsonl} records.
 *
 * @param tensor tensor name
 * @param role recipe role ({@code q}, {@code down}, {@code norms}, ...)
 * @param type storage type served (a {@code DType} name: I4, I8, F8_E4M3, Q4_0, F32, ...)
 * @param bits bits per element code
 * @param groupSize input columns per scale group (0 for per-channel / per-tensor / unquantized)
 * @param scheme {@code symmetric|asymmetric} plus granularity, e.g. {@code symmetric/per_block}, or
 *     {@code none}
 * @param method calibration method ({@code minmax}, {@code mse}, {@code awq}, {@code none}, ...)
 * @param calibrationSha256 digest of the calibration text the scales came from, or {@code none}
 * @param sourceSha256 digest of the source (full-precision) tensor's bytes ("" when unknown)
 * @param origin where the served form came from
 */
public record QbomEntry(
    String tensor,
    String role,
    String type,
    int bits,
    int groupSize,
    String scheme,
    String method,
    String calibrationSha256,
    String sourceSha256,
    Origin origin) {
  public QbomEntry {
    Objects.requireNonNull(tensor, "tensor");
    Objects.requireNonNull(type, "type");
    Objects.requireNonNull(origin, "origin");
  }

  /** Where a tensor's served form came from. */
  public enum Origin {
    /** Quantized by {@code kvant quantize}. */
    QUANTIZED,
    /** Scales computed by the agent on arrival. */
    RECALIBRATED,
    /** Scales taken from the version's {@code encodings.json}. */
    ENCODINGS,
    /** The parent's object, shared. */
    INHERITED,
    /** Served as published. */
    PUBLISHED;

    /** The JSON spelling ({@code recalibrated}, ...). */
    public String jsonName() {
      return name().toLowerCase(Locale.ROOT);
    }

    /**
     * @throws IllegalArgumentException for an unknown spelling
     */
    public static Origin ofJson(String s) {
      for (Origin o : values()) {
        if (o.jsonName().equals(s)) {
          return o;
        }
      }
      throw new IllegalArgumentException("unknown origin '" + s + "'");
    }
  }

  /** The same entry with another origin. */
  public QbomEntry withOrigin(Origin o) {
    return new QbomEntry(
        tensor, role, type, bits, groupSize, scheme, method, calibrationSha256, sourceSha256, o);
  }
}
