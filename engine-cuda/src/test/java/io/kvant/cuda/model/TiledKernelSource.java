package io.kvant.cuda.model;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.cuda.device.KernelOnTheCpu;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.file.Path;

/**
 * What the CPU runs of kvant.cu's tiled products ({@link MqsKernelOnTheCpuTest}, {@link
 * MqwKernelOnTheCpuTest}) cut from the source and send to their harnesses alike.
 */
final class TiledKernelSource {
  private TiledKernelSource() {}

  /** The code formats' defines and the helpers every tiled product decodes and stores with. */
  static String helpers(String src) {
    return KernelOnTheCpu.codeFormats(src)
        + KernelOnTheCpu.line(src, "#define MQ_ROW_GROUP ")
        + KernelOnTheCpu.cut(
            src,
            "__device__ __forceinline__ float decode8",
            "__device__ __forceinline__ float decode8")
        + KernelOnTheCpu.cut(
            src,
            "__device__ __forceinline__ void store_out",
            "__device__ __forceinline__ void store_out")
        + KernelOnTheCpu.cut(
            src,
            "__device__ __forceinline__ void mq_dequant",
            "__device__ __forceinline__ void mq8_dequant");
  }

  /**
   * The source from the line {@code from} through {@code last}, its dynamic shared memory {@code
   * decl} (an {@code extern __shared__} array of {@code type}) taken from the shim instead.
   */
  static String section(String src, String from, String last, String decl, String type) {
    int start = src.indexOf("\n" + from) + 1;
    int end = src.indexOf(last, start) + last.length();
    assertThat(start).as("kvant.cu has %s", from).isPositive();
    assertThat(end)
        .as("kvant.cu ends that section with %s", last)
        .isGreaterThan(start + last.length());
    String body = src.substring(start, end);
    assertThat(body).as("the section's shared memory declaration").contains(decl);
    String name = decl.substring(decl.lastIndexOf(' ') + 1, decl.indexOf('['));
    return body.replace(decl, type + "* " + name + " = emu_dynamic_shared<" + type + ">();") + "\n";
  }

  /**
   * Runs {@code harness} on {@code in}'s bytes (in {@code dir}), reading {@code count} floats back.
   */
  static float[] run(Path harness, Path dir, ByteBuffer in, int count) throws Exception {
    ByteBuffer o = KernelOnTheCpu.run(harness, dir, in.array());
    float[] y = new float[count];
    o.asFloatBuffer().get(y);
    return y;
  }

  /** Every value of {@code v}, in order. */
  static void put(ByteBuffer b, float[] v) {
    for (float f : v) {
      b.putFloat(f);
    }
  }

  /**
   * A tiled layout's first {@code codeBytes} codes, its scales and zero points (if any), in order.
   */
  static void put(ByteBuffer b, QuantizedLayout q, int codeBytes) {
    b.put(q.codes().asSlice(0, codeBytes).toArray(ValueLayout.JAVA_BYTE));
    for (float s : q.scales()) {
      b.putFloat(s);
    }
    if (q.zeros() != null) {
      b.put(q.zeros());
    }
  }
}
