package io.kvant.cuda;

import io.kvant.cuda.device.CudaOptions;
import io.kvant.cuda.driver.CudaUnavailableException;
import io.kvant.engine.forward.ComputeBackend;
import io.kvant.engine.forward.CpuBackend;
import io.kvant.engine.forward.Device;
import io.kvant.engine.tensor.ComputePool;
import java.util.function.Consumer;

/** Opens the backend that {@code --device} names. */
public final class Backends {
  private Backends() {}

  /**
   * {@code cpu}: the CPU backend on {@code pool}. {@code cuda}: the CUDA backend (with {@code pool}
   * as its host threads for work between steps, such as sampling on the host), or a {@link
   * CudaUnavailableException} with one line saying why. {@code auto}: CUDA where it opens, else the
   * CPU, telling {@code log} why in one line.
   */
  public static ComputeBackend open(
      Device device, CudaOptions cuda, ComputePool pool, Consumer<String> log) {
    return switch (device) {
      case CPU -> new CpuBackend(pool);
      case CUDA -> CudaBackend.open(cuda, pool);
      case AUTO -> {
        try {
          yield CudaBackend.open(cuda, pool);
        } catch (CudaUnavailableException e) {
          log.accept("--device auto: " + e.getMessage() + "; running on the CPU");
          yield new CpuBackend(pool);
        }
      }
    };
  }
}
