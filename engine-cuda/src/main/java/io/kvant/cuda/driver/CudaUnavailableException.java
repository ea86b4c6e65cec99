package io.kvant.cuda.driver;

/**
 * No usable CUDA here: the driver library is missing, it reports no device, or a library the
 * backend needs (NVRTC, cuBLASLt) cannot be found. The message is one line meant for an operator,
 * e.g. {@code CUDA unavailable: libcuda.so.1 not found (no NVIDIA driver installed)}.
 */
public final class CudaUnavailableException extends RuntimeException {
  public CudaUnavailableException(String message) {
    super("CUDA unavailable: " + message);
  }

  public CudaUnavailableException(String message, Throwable cause) {
    super("CUDA unavailable: " + message, cause);
  }
}
