package io.kvant.cuda.device;

import java.nio.file.Path;
import java.util.List;

/**
 * Where the CUDA backend looks for its libraries and keeps its compiled kernels.
 *
 * @param libraryDirs directories searched for libnvrtc and libcublasLt (and libcuda) before the
 *     loader's path, e.g. {@code /usr/local/cuda/lib64}
 * @param kernelCacheDir where compiled kernels are cached (created when missing)
 * @param deviceOrdinal which CUDA device to use
 * @param graphs whether decode steps run as captured CUDA graphs (on by default; off is for
 *     comparing and for diagnosing a driver that mis-captures)
 * @param w8a8MinRows from how many rows on INT8 per-channel and FP8 E4M3 weights take the W8A8
 *     products (activations quantized per token; {@code io.kvant.cuda.model.W8a8Products}); 0, the
 *     default, keeps them off (docs/DECISIONS.md says why)
 * @param tileEightBit whether INT8, Q8_0 and FP8 E4M3 weights are uploaded in the tiled layout of
 *     the tensor-core decode products ({@code mq8}); on by default since they were measured on an
 *     H200 (8B decode 1.08-1.10x at one row, 2.9-3.2x at 8-16: perf/RESULTS.md, GPU session 11),
 *     and ignored while W8A8 is on (it reads row-major codes)
 */
public record CudaOptions(
    List<Path> libraryDirs,
    Path kernelCacheDir,
    int deviceOrdinal,
    boolean graphs,
    int w8a8MinRows,
    boolean tileEightBit) {
  public CudaOptions {
    libraryDirs = List.copyOf(libraryDirs);
    if (deviceOrdinal < 0) {
      throw new IllegalArgumentException("device ordinal must be >= 0, got " + deviceOrdinal);
    }
    if (w8a8MinRows < 0) {
      throw new IllegalArgumentException("w8a8MinRows must be >= 0 (0: off), got " + w8a8MinRows);
    }
  }

  /**
   * The row count from which the W8A8 products beat the best weight-only kernel on every 8B matrix
   * ({@code CudaBench gemv --rows 2,4,8,16,256} on an H200, perf/RESULTS.md: at 8 rows 1.4-4.0x on
   * all four, at 4 rows on two of the four; the F16 tiles lose to them at every row count): {@code
   * KVANT_CUDA_W8A8=on}.
   */
  public static final int W8A8_MEASURED_MIN_ROWS = 8;

  /** Options with W8A8 off and 8-bit codes tiled (the defaults). */
  public CudaOptions(
      List<Path> libraryDirs, Path kernelCacheDir, int deviceOrdinal, boolean graphs) {
    this(libraryDirs, kernelCacheDir, deviceOrdinal, graphs, 0, true);
  }

  /**
   * Defaults from an environment map: {@code CUDA_HOME}/{@code CUDA_PATH} lib64 and {@code
   * /usr/local/cuda/lib64}; the kernel cache under {@code XDG_CACHE_HOME} or {@code
   * $HOME/.cache}/kvant/cuda; graphs on unless {@code KVANT_CUDA_GRAPHS=0}; W8A8 from {@code
   * KVANT_CUDA_W8A8} rows on ({@code on}: {@link #W8A8_MEASURED_MIN_ROWS}; unset, {@code off} or 0:
   * off); 8-bit codes tiled unless {@code KVANT_CUDA_MQ8=off} (unset or {@code on}: tiled).
   *
   * @throws IllegalArgumentException naming {@code KVANT_CUDA_W8A8} when it is not a count, or
   *     {@code KVANT_CUDA_MQ8} when it is not on or off
   */
  public static CudaOptions fromEnvironment(java.util.Map<String, String> env) {
    List<Path> dirs = new java.util.ArrayList<>();
    for (String k : List.of("CUDA_HOME", "CUDA_PATH")) {
      String v = env.get(k);
      if (v != null && !v.isBlank()) {
        dirs.add(Path.of(v, "lib64"));
      }
    }
    dirs.add(Path.of("/usr/local/cuda/lib64"));
    String cache = env.get("XDG_CACHE_HOME");
    Path cacheDir =
        cache != null && !cache.isBlank()
            ? Path.of(cache, "kvant", "cuda")
            : Path.of(env.getOrDefault("HOME", "/tmp"), ".cache", "kvant", "cuda");
    String w8a8 = env.getOrDefault("KVANT_CUDA_W8A8", "0").trim();
    int w8a8Rows;
    try {
      w8a8Rows =
          switch (w8a8) {
            case "", "off" -> 0;
            case "on" -> W8A8_MEASURED_MIN_ROWS;
            default -> Integer.parseInt(w8a8);
          };
    } catch (NumberFormatException e) {
      w8a8Rows = -1;
    }
    if (w8a8Rows < 0) {
      throw new IllegalArgumentException(
          "KVANT_CUDA_W8A8 must be on, off or a row count >= 0 (0: off), got '" + w8a8 + "'");
    }
    String mq8 = env.getOrDefault("KVANT_CUDA_MQ8", "on").trim();
    if (!mq8.equals("on") && !mq8.equals("off") && !mq8.isEmpty()) {
      throw new IllegalArgumentException("KVANT_CUDA_MQ8 must be on or off, got '" + mq8 + "'");
    }
    return new CudaOptions(
        dirs, cacheDir, 0, !"0".equals(env.get("KVANT_CUDA_GRAPHS")), w8a8Rows, !mq8.equals("off"));
  }

  /** These options with graphs on or off. */
  public CudaOptions withGraphs(boolean on) {
    return new CudaOptions(
        libraryDirs, kernelCacheDir, deviceOrdinal, on, w8a8MinRows, tileEightBit);
  }

  /** Whether the weight cache tiles 8-bit codes: asked for, and W8A8 off. */
  public boolean tilesEightBit() {
    return tileEightBit && w8a8MinRows == 0;
  }
}
