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
 */
public record CudaOptions(
    List<Path> libraryDirs, Path kernelCacheDir, int deviceOrdinal, boolean graphs) {
  public CudaOptions {
    libraryDirs = List.copyOf(libraryDirs);
    if (deviceOrdinal < 0) {
      throw new IllegalArgumentException("device ordinal must be >= 0, got " + deviceOrdinal);
    }
  }

  /**
   * Defaults from an environment map: {@code CUDA_HOME}/{@code CUDA_PATH} lib64 and {@code
   * /usr/local/cuda/lib64}; the kernel cache under {@code XDG_CACHE_HOME} or {@code
   * $HOME/.cache}/kvant/cuda; graphs on unless {@code KVANT_CUDA_GRAPHS=0}.
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
    return new CudaOptions(dirs, cacheDir, 0, !"0".equals(env.get("KVANT_CUDA_GRAPHS")));
  }

  /** These options with graphs on or off. */
  public CudaOptions withGraphs(boolean on) {
    return new CudaOptions(libraryDirs, kernelCacheDir, deviceOrdinal, on);
  }
}
