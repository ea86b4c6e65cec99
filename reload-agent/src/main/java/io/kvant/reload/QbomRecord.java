package io.kvant.reload;

import java.time.Instant;
import java.util.List;

/**
 * The quantization bill of materials of one swapped version: how each of its tensors was made.
 *
 * @param model model name in the bucket
 * @param version version id
 * @param parent parent version ("" for a full version)
 * @param recipe recipe name
 * @param publisher who published it (from the manifest)
 * @param manifestSha256 digest of its manifest
 * @param calibrationSha256 digest of the calibration prompts used, or {@code none}
 * @param time when it was swapped in
 * @param tensors one entry per tensor
 */
public record QbomRecord(
    String model,
    String version,
    String parent,
    String recipe,
    String publisher,
    String manifestSha256,
    String calibrationSha256,
    Instant time,
    List<Entry> tensors) {
  public QbomRecord {
    tensors = List.copyOf(tensors);
  }

  /**
   * One tensor.
   *
   * @param name tensor name
   * @param type storage type served (F32, Q8_0, ...)
   * @param bits bits per element code
   * @param groupSize inputs per scale (0: none or per channel)
   * @param scheme e.g. {@code symmetric/per_block}, or {@code full}
   * @param method calibration method, or {@code none}
   * @param sourceSha256 digest of the full-precision source bytes ("" when unknown)
   * @param origin {@code recalibrated} (scales computed now), {@code encodings} (taken from the
   *     bucket), {@code inherited} (the parent's object, shared), or {@code published} (served as
   *     published)
   */
  public record Entry(
      String name,
      String type,
      int bits,
      int groupSize,
      String scheme,
      String method,
      String sourceSha256,
      String origin) {}
}
