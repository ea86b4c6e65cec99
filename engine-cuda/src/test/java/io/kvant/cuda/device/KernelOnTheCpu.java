package io.kvant.cuda.device;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What the tests that run kvant.cu's kernels on the CPU share: cutting a kernel and its helpers out
 * of the source, and building a harness from {@code emu/} (the CUDA shims and a {@code main}) with
 * g++ against the cut, written as {@code kernel.inc}.
 */
public final class KernelOnTheCpu {
  private KernelOnTheCpu() {}

  /**
   * From the line starting with {@code from} to the end of the function starting at {@code
   * lastFunction} (its first closing brace in column 0 after it; {@code lastFunction} may equal
   * {@code from}).
   */
  public static String cut(String src, String from, String lastFunction) {
    int start = src.indexOf("\n" + from) + 1;
    assertThat(start).as("kvant.cu has %s", from).isPositive();
    int f = src.indexOf("\n" + lastFunction, start - 1);
    assertThat(f).as("kvant.cu has %s", lastFunction).isGreaterThanOrEqualTo(start - 1);
    int end = src.indexOf("\n}\n", f) + 3;
    return src.substring(start, end) + "\n";
  }

  /** From the line starting with {@code from} up to (not including) the line {@code before}. */
  public static String cutBefore(String src, String from, String before) {
    int start = src.indexOf("\n" + from) + 1;
    assertThat(start).as("kvant.cu has %s", from).isPositive();
    int end = src.indexOf("\n" + before, start);
    assertThat(end).as("kvant.cu has %s after %s", before, from).isGreaterThan(start);
    return src.substring(start, end + 1);
  }

  /**
   * kvant.cu's element types and their loads and stores ({@code DT_*}, the BF16 conversions, {@code
   * load_elem}, {@code store_elem}; the F16 conversions come from the shims).
   */
  public static String elements(String src) {
    return line(src, "#define DT_F32 ")
        + line(src, "#define DT_F16 ")
        + line(src, "#define DT_BF16 ")
        + cut(
            src,
            "__device__ __forceinline__ float bf16_to_f32",
            "__device__ __forceinline__ u16 f32_to_bf16")
        + cut(
            src,
            "__device__ __forceinline__ float load_elem",
            "__device__ __forceinline__ void store_elem");
  }

  /** kvant.cu's 8-bit code formats ({@code QF_INT8}, {@code QF_E4M3}, {@code QF_E5M2} defines). */
  public static String codeFormats(String src) {
    return line(src, "#define QF_INT8 ")
        + line(src, "#define QF_E4M3 ")
        + line(src, "#define QF_E5M2 ");
  }

  /**
   * kvant.cu's RoPE-to-attention section with what it calls (element types, code formats, the
   * decoders up to {@code warp_max}): RoPE, the KV appends and the weighted key search, the
   * attention kernels and their merges, each {@code extern __shared__} array made a pointer to the
   * shim's dynamic shared memory.
   */
  public static String ropeToAttention(String src) {
    return elements(src)
        + codeFormats(src)
        + cut(
            src,
            "__device__ __forceinline__ float decode8",
            "__device__ __forceinline__ float warp_max")
        + dynamicShared(
            cutBefore(src, "// One rotated pair", "// out = silu(gate) * up, elementwise"));
  }

  /** Each {@code extern __shared__ T name[];} as a pointer to the shim's dynamic shared memory. */
  private static String dynamicShared(String section) {
    Matcher m = Pattern.compile("extern __shared__ (\\w+) (\\w+)\\[\\];").matcher(section);
    StringBuilder sb = new StringBuilder();
    int found = 0;
    while (m.find()) {
      m.appendReplacement(
          sb, m.group(1) + "* " + m.group(2) + " = emu_dynamic_shared<" + m.group(1) + ">();");
      found++;
    }
    m.appendTail(sb);
    assertThat(found).as("dynamic shared memory declarations").isGreaterThanOrEqualTo(3);
    return sb.toString();
  }

  /** The line of {@code src} that starts with {@code prefix}, with its newline. */
  public static String line(String src, String prefix) {
    int start = src.indexOf("\n" + prefix) + 1;
    assertThat(start).as("kvant.cu has %s", prefix).isPositive();
    return src.substring(start, src.indexOf('\n', start) + 1);
  }

  /**
   * Writes {@code kernel} as {@code dir/kernel.inc}, copies the {@code emu/} resources {@code
   * harness} and {@code headers} into {@code dir} and builds the harness with g++; returns the
   * executable. Without g++ on the PATH the calling test is skipped (an assumption naming {@code
   * what} it would have run).
   */
  public static Path build(Path dir, String what, String kernel, String harness, String... headers)
      throws Exception {
    Path gxx = HostTools.find("g++");
    assumeTrue(gxx != null, "no g++ on the PATH: the CPU run of " + what + " is skipped");
    Files.writeString(dir.resolve("kernel.inc"), kernel);
    copy(dir, harness);
    for (String h : headers) {
      copy(dir, h);
    }
    Path exe = dir.resolve(harness.replace(".cpp", ""));
    HostTools.run(
        List.of(
            gxx.toString(),
            "-std=c++20",
            "-O2",
            "-pthread",
            "-I" + dir,
            "-o",
            exe.toString(),
            dir.resolve(harness).toString()),
        dir.resolve("g++.log"),
        240);
    return exe;
  }

  /**
   * Runs {@code harness IN OUT} in {@code dir} with {@code input} as IN; returns OUT,
   * little-endian.
   */
  public static ByteBuffer run(Path harness, Path dir, byte[] input) throws Exception {
    Path in = dir.resolve("harness-in.bin");
    Path out = dir.resolve("harness-out.bin");
    Files.write(in, input);
    HostTools.run(
        List.of(harness.toString(), in.toString(), out.toString()),
        dir.resolve("harness.log"),
        300);
    return ByteBuffer.wrap(Files.readAllBytes(out)).order(ByteOrder.LITTLE_ENDIAN);
  }

  private static void copy(Path dir, String name) throws IOException {
    try (InputStream in = KernelOnTheCpu.class.getResourceAsStream("/io/kvant/cuda/emu/" + name)) {
      assertThat(in).as("test resource emu/%s", name).isNotNull();
      Files.write(dir.resolve(name), in.readAllBytes());
    }
  }
}
