package io.kvant.cuda.driver;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NativeLibraryTest {
  @Test
  void aMissingLibraryIsOneLineNamingEveryCandidate(@TempDir Path dir) {
    assertThatThrownBy(
            () ->
                NativeLibrary.open(
                    List.of("libkvant-no-such.so.1", "libkvant-no-such.so"),
                    List.of(dir),
                    Arena.global(),
                    "libkvant-no-such (a test library)"))
        .isInstanceOf(CudaUnavailableException.class)
        .hasMessage(
            "CUDA unavailable: libkvant-no-such (a test library) not found (tried"
                + " libkvant-no-such.so.1, libkvant-no-such.so)")
        .hasMessageNotContaining("\n");
  }

  @Test
  void aFileThatIsNotALibraryIsSkippedAndNamed(@TempDir Path dir) throws Exception {
    Path fake = dir.resolve("libkvant-fake.so");
    java.nio.file.Files.writeString(fake, "not an ELF file");
    assertThatThrownBy(
            () ->
                NativeLibrary.open(List.of("libkvant-fake.so"), List.of(dir), Arena.global(), "x"))
        .isInstanceOf(CudaUnavailableException.class)
        .hasMessageContaining(fake.toString());
  }

  @Test
  void theLibcAlwaysLoadsAndBindsAFunction() {
    NativeLibrary libc =
        NativeLibrary.open(List.of("libc.so.6"), List.of(), Arena.global(), "libc");
    assertThat(libc.name()).isEqualTo("libc.so.6");
    assertThatThrownBy(
            () -> libc.fn("kvant_no_such_symbol", java.lang.foreign.FunctionDescriptor.ofVoid()))
        .isInstanceOf(CudaUnavailableException.class)
        .hasMessageContaining("has no function kvant_no_such_symbol");
  }

  @Test
  void cudaErrorsNameTheCallAndTheDriversWords() {
    CudaException e =
        new CudaException(
            "cuMemAlloc_v2(1024 bytes)", 2, "CUDA_ERROR_OUT_OF_MEMORY (out of memory)");
    assertThat(e)
        .hasMessage("cuMemAlloc_v2(1024 bytes) failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)");
    assertThat(e.call()).isEqualTo("cuMemAlloc_v2(1024 bytes)");
    assertThat(e.code()).isEqualTo(2);
  }
}
