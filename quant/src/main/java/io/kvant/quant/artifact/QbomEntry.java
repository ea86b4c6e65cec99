package io.kvant.quant.artifact;

import java.time.Instant;
import java.util.Objects;

/**
 * One quantization bill-of-materials record: how one tensor of a quantized model was made.
 *
 * @param tensor tensor name
 * @param role recipe role ({@code q}, {@code down}, {@code norms}, ...)
 * @param type storage type (a {@code DType} name: I4, I8, F8_E4M3, Q4_0, F32, ...)
 * @param bits bits per element code
 * @param groupSize input columns per scale group (0 for per-channel / per-tensor / unquantized)
 * @param scheme {@code symmetric|asymmetric} plus granularity, e.g. {@code symmetric/per_block}
 * @param method calibration method ({@code minmax}, {@code mse}, {@code awq}, {@code none}, ...)
 * @param calibrationSha256 digest of the calibration text, or {@code none}
 * @param sourceSha256 digest of the source (full-precision) tensor's bytes
 * @param time when it was quantized (from the injected clock)
 * @param publisher who made it
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
    Instant time,
    String publisher) {
  public QbomEntry {
    Objects.requireNonNull(tensor, "tensor");
    Objects.requireNonNull(type, "type");
    Objects.requireNonNull(time, "time");
  }
}
