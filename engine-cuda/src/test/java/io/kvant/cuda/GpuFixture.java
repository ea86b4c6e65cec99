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
  private static String unavailable;

  private GpuFixture() {}

  /** The shared backend; skips the calling test (with the reason) where there is no CUDA. */
  public static synchronized CudaBackend backend() {
    if (backend == null && unavailable == null) {
      try {
        Map<String, String> env = System.getenv();
        CudaOptions defaults = CudaOptions.fromEnvironment(env);
        backend =
            CudaBackend.open(
                new CudaOptions(
                    defaults.libraryDirs(),
                    Path.of(System.getProperty("java.io.tmpdir"), "kvant-test-kernels"),
                    0,
                    true));
      } catch (CudaUnavailableException e) {
        unavailable = e.getMessage();
      }
    }
    assumeTrue(backend != null, () -> "GPU test skipped: " + unavailable);
    return backend;
  }
}
