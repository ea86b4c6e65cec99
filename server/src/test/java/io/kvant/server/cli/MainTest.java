package io.kvant.server.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class MainTest {
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();

  private Main main(Map<String, java.util.function.Function<List<String>, Integer>> commands) {
    return new Main(
        new PrintStream(out, true, StandardCharsets.UTF_8),
        new PrintStream(err, true, StandardCharsets.UTF_8),
        commands);
  }

  @Test
  void noArgumentsPrintsUsageListingEverySubcommand() {
    int code = main(Map.of()).run(new String[0]);
    assertThat(code).isEqualTo(2);
    assertThat(out.toString(StandardCharsets.UTF_8))
        .contains("usage: kvant")
        .contains("serve", "generate", "quantize", "eval", "agent", "bench");
  }

  @Test
  void unknownCommandIsAUsageError() {
    int code = main(Map.of()).run(new String[] {"frobnicate"});
    assertThat(code).isEqualTo(2);
    assertThat(err.toString(StandardCharsets.UTF_8)).contains("unknown command 'frobnicate'");
  }

  @Test
  void registeredCommandGetsTheRemainingArguments() {
    var seen = new java.util.ArrayList<String>();
    int code =
        main(Map.of(
                "generate",
                args -> {
                  seen.addAll(args);
                  return 0;
                }))
            .run(new String[] {"generate", "--max-tokens", "3"});
    assertThat(code).isZero();
    assertThat(seen).containsExactly("--max-tokens", "3");
  }
}
