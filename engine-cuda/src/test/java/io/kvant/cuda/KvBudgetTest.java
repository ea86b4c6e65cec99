package io.kvant.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** The {@code --kv-cache-mb auto} policy (runs without a GPU: a pure function of the numbers). */
class KvBudgetTest {
  private static final long GIB = 1L << 30;

  @Test
  void keepsRoomForASecondCopyOfTheWeightsAndTwoGibThenTakesNinetyPercent() {
    // an 8B BF16 model on an H200: 139 GiB free after loading 15 GiB of weights
    assertThat(CudaBackend.kvBudget(139 * GIB, 15 * GIB)).isEqualTo((long) (122 * GIB * 0.9));
  }

  @Test
  void isZeroWhenTheWeightsAndTheReserveTakeEverything() {
    assertThat(CudaBackend.kvBudget(10 * GIB, 9 * GIB)).isZero();
    assertThat(CudaBackend.kvBudget(GIB, 4 * GIB)).isZero();
  }
}
