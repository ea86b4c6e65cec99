package io.kvant.cuda.driver;

/**
 * A CUDA driver, NVRTC or cuBLASLt call that failed. The message names the call and the library's
 * own error name and string, e.g. {@code cuMemAlloc_v2(1073741824 bytes) failed:
 * CUDA_ERROR_OUT_OF_MEMORY (out of memory)}.
 */
public class CudaException extends RuntimeException {
  private final String call;
  private final int code;

  public CudaException(String call, int code, String detail) {
    super(call + " failed: " + detail);
    this.call = call;
    this.code = code;
  }

  /** The native function that failed, with any context the caller added. */
  public String call() {
    return call;
  }

  /**
   * The library's status code ({@code CUresult}, {@code nvrtcResult} or {@code cublasStatus_t}).
   */
  public int code() {
    return code;
  }
}
