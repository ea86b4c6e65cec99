package io.kvant.cuda;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.kvant.cuda.device.CudaOptions;
import io.kvant.cuda.driver.CudaUnavailableException;
import java.nio.file.Path;
import java.util.Map;

/**
 * The CUDA backend for tests tagged {@code gpu}: opened once per test JVM (opening a device and
 * loading the kernels is the slow part), or the calling test is skipped with the reason when this
 * machine has no usable CUDA. CI has no GPU: its run reports these tests as skipped.
 */
public final class GpuFixture {
  private static CudaBackend backend;
  private static CudaBackend w8a8Backend;
  private static String unavailable;

  private GpuFixture() {}

  /**
   * The shared backend (8-bit codes tiled, so the model tests run mq8); skips the calling test
   * (with the reason) where there is no CUDA.
   */
  public static synchronized CudaBackend backend() {
    if (backend == null && unavailable == null) {
      backend = open(0);
    }
    assumeTrue(backend != null, () -> "GPU test skipped: " + unavailable);
    return backend;
  }

  /**
   * A second backend (same device, its own weight cache) with W8A8 from one row on: its 8-bit codes
   * stay row-major, as W8A8 reads them. Skips the calling test where there is no CUDA.
   */
  public static synchronized CudaBackend w8a8Backend() {
    backend();
    if (w8a8Backend == null) {
      w8a8Backend = open(1);
    }
    return w8a8Backend;
  }

  private static CudaBackend open(int w8a8MinRows) {
    try {
      Map<String, String> env = System.getenv();
      CudaOptions defaults = CudaOptions.fromEnvironment(env);
      return CudaBackend.open(
          new CudaOptions(
              defaults.libraryDirs(),
              Path.of(System.getProperty("java.io.tmpdir"), "kvant-test-kernels"),
              0,
              true,
              w8a8MinRows,
              true));
    } catch (CudaUnavailableException e) {
      unavailable = e.getMessage();
      return null;
    }
  }
}
