package io.kvant.reload;

import io.kvant.engine.model.Weight;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What the agent remembers of a version the server holds (or that it built as a base): the values
 * it serves and, when known, its full-precision values and their source digests, by tensor name.
 * Maps are never modified after construction except the digest cache.
 */
final class Held {
  final String id;
  final String recipe;
  final String publisher;

  /** Full-precision values by name, or null when unknown (a quantized model loaded from disk). */
  final Map<String, Weight> full;

  /** Served values by name. */
  final Map<String, Weight> served;

  /** QBOM entries by name (for inheritance by deltas). */
  final Map<String, io.kvant.quant.artifact.QbomEntry> qbom;

  /** AIMET encodings in force by tensor name (from the bucket; inherited by deltas). */
  final Map<String, io.kvant.quant.encoding.TensorEncoding> encodings;

  private final Map<String, String> digests = new ConcurrentHashMap<>();

  Held(
      String id,
      String recipe,
      String publisher,
      Map<String, Weight> full,
      Map<String, Weight> served,
      Map<String, io.kvant.quant.artifact.QbomEntry> qbom,
      Map<String, String> knownDigests,
      Map<String, io.kvant.quant.encoding.TensorEncoding> encodings) {
    this.encodings = Map.copyOf(encodings);
    this.id = id;
    this.recipe = recipe;
    this.publisher = publisher;
    this.full = full == null ? null : Map.copyOf(full);
    this.served = Map.copyOf(served);
    this.qbom = Map.copyOf(qbom);
    this.digests.putAll(knownDigests);
  }

  /**
   * The source digest of tensor {@code name} (computed from its full-precision value as F32 when it
   * was not published with one), or null when unknown.
   */
  String digest(String name) {
    String d = digests.get(name);
    if (d == null && full != null && full.containsKey(name)) {
      d = TensorData.digestAsF32(full.get(name));
      if (d != null) {
        digests.put(name, d);
      }
    }
    return d;
  }
}
