package io.kvant.engine.format.gguf;

import static io.kvant.engine.format.gguf.GgufValueType.*;

import io.kvant.engine.testing.GgufTestWriter;
import io.kvant.engine.testing.GgufTestWriter.Array;
import java.util.List;
import java.util.Random;

/** Small valid GGUF files shared by the GGUF tests. */
final class GgufSamples {
  private GgufSamples() {}

  static byte[] bytes(int n, long seed) {
    byte[] b = new byte[n];
    new Random(seed).nextBytes(b);
    return b;
  }

  /** F32 [3,2]: 6 floats 0.5, 1.5, ... */
  static byte[] f32Data() {
    java.nio.ByteBuffer b =
        java.nio.ByteBuffer.allocate(24).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < 6; i++) {
      b.putFloat(i + 0.5f);
    }
    return b.array();
  }

  /** F16 [4]: 1, -2, 0.25, 65504. */
  static byte[] f16Data() {
    java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(8).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    for (float f : new float[] {1f, -2f, 0.25f, 65504f}) {
      b.putShort(Float.floatToFloat16(f));
    }
    return b.array();
  }

  /** A file with every metadata value type and F32/F16/Q8_0/Q4_0 tensors. */
  static GgufTestWriter everything() {
    return new GgufTestWriter()
        .kv("general.architecture", STRING, "llama")
        .kv("t.u8", UINT8, 200)
        .kv("t.i8", INT8, -100)
        .kv("t.u16", UINT16, 60000)
        .kv("t.i16", INT16, -30000)
        .kv("t.u32", UINT32, 0xFFFFFFFF)
        .kv("t.i32", INT32, -2_000_000_000)
        .kv("t.u64", UINT64, 1L << 40)
        .kv("t.i64", INT64, -(1L << 50))
        .kv("t.f32", FLOAT32, 1e-5f)
        .kv("t.f64", FLOAT64, Math.PI)
        .kv("t.bool", BOOL, true)
        .kv("t.string", STRING, "héllo ▁world")
        .kv("t.strings", ARRAY, new Array(STRING, List.of("<unk>", "", "▁the")))
        .kv("t.floats", ARRAY, new Array(FLOAT32, List.of(0f, -1.5f, 3.25f)))
        .kv("t.u8s", ARRAY, new Array(UINT8, List.of(0, 255, 7)))
        .kv("t.i16s", ARRAY, new Array(INT16, List.of(-1, 2)))
        .kv("t.u32s", ARRAY, new Array(UINT32, List.of(1, 0x7FFFFFFF)))
        .kv("t.i64s", ARRAY, new Array(INT64, List.of(-5L, 6L)))
        .kv("t.bools", ARRAY, new Array(BOOL, List.of(true, false)))
        .kv("t.f64s", ARRAY, new Array(FLOAT64, List.of(0.5, 2.0)))
        .kv(
            "t.nested",
            ARRAY,
            new Array(
                ARRAY, List.of(new Array(INT32, List.of(1, 2)), new Array(STRING, List.of("x")))))
        .kv("t.empty", ARRAY, new Array(INT32, List.of()))
        .tensor("f32", GgmlType.F32.id(), new long[] {3, 2}, f32Data())
        .tensor("f16", GgmlType.F16.id(), new long[] {4}, f16Data())
        .tensor("q8", GgmlType.Q8_0.id(), new long[] {64, 2}, bytes(4 * 34, 1))
        .tensor("q4", GgmlType.Q4_0.id(), new long[] {32, 1, 3}, bytes(3 * 18, 2));
  }
}
