package io.kvant.server.grpc;

import io.kvant.engine.kv.KvCacheType;

/** The API's names of KV storage types ("f32", "f16", "int8", "fp8"). */
public final class KvTypes {
  private KvTypes() {}

  public static String name(KvCacheType t) {
    return switch (t) {
      case F32 -> "f32";
      case INT8 -> "int8";
      case FP8_E4M3 -> "fp8";
      case F16 -> "f16";
    };
  }

  /** Parses a name accepted by the configuration. */
  public static KvCacheType parse(String name) {
    return switch (name) {
      case "f32" -> KvCacheType.F32;
      case "int8" -> KvCacheType.INT8;
      case "fp8" -> KvCacheType.FP8_E4M3;
      case "f16" -> KvCacheType.F16;
      default ->
          throw new IllegalArgumentException("kv type must be f32, f16, int8 or fp8, got " + name);
    };
  }
}
