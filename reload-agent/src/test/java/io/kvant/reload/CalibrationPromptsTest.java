package io.kvant.reload;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.Size;
import org.junit.jupiter.api.Test;

class CalibrationPromptsTest {
  @Test
  void readsTextLines() throws Exception {
    byte[] b = "{\"text\":\"a\"}\n\n{\"text\":\"b c\"}\n".getBytes(StandardCharsets.UTF_8);
    assertThat(CalibrationPrompts.parse(b)).containsExactly("a", "b c");
    assertThatThrownBy(() -> CalibrationPrompts.parse("{\"x\":1}".getBytes()))
        .isInstanceOf(Rejection.class)
        .hasMessageContaining("line 1");
  }

  @Property(tries = 300)
  void arbitraryBytesOnlyEverReject(@ForAll @Size(max = 400) byte[] bytes) {
    try {
      CalibrationPrompts.parse(bytes);
    } catch (Rejection expected) {
      assertThat(expected.reason()).isEqualTo(Rejection.Reason.BAD_CALIBRATION);
    }
  }
}
