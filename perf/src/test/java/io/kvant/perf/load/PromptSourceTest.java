package io.kvant.perf.load;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PromptSourceTest {
  private static final PromptSource SYNTHETIC =
      PromptSource.synthetic(new LengthDist.Fixed(12), new LengthDist.Uniform(4, 9), 7);

  private static List<String> prompts(PromptSource s, int from, int to) {
    return IntStream.range(from, to).mapToObj(i -> s.get(i).prompt()).toList();
  }

  @Test
  void aRequestsPromptDependsOnlyOnTheSeedAndItsIndex() {
    PromptSource again =
        PromptSource.synthetic(new LengthDist.Fixed(12), new LengthDist.Uniform(4, 9), 7);
    assertThat(prompts(again, -3, 40)).isEqualTo(prompts(SYNTHETIC, -3, 40));
    assertThat(SYNTHETIC.get(5)).isEqualTo(again.get(5));
    assertThat(SYNTHETIC.get(5)).isNotEqualTo(SYNTHETIC.get(6));
  }

  @Test
  void levelZeroIsTheSourceItselfAndLaterLevelsShareNoPrompt() {
    assertThat(SYNTHETIC.forLevel(0)).isSameAs(SYNTHETIC);
    Set<String> seen = new HashSet<>();
    for (int level = 0; level < 4; level++) {
      PromptSource s = SYNTHETIC.forLevel(level);
      // warm-up requests (negative indices) too: a level's warm-up must not prefill the next level
      List<String> p = prompts(s, -8, 64);
      for (String prompt : p) {
        assertThat(seen.add(prompt)).as("level %d repeats %s", level, prompt).isTrue();
      }
      // same distributions: 12 words, max_tokens in [4, 9]
      assertThat(p).allSatisfy(t -> assertThat(t.split(" ")).hasSize(12));
      assertThat(IntStream.range(0, 64).map(i -> s.get(i).maxTokens()))
          .allMatch(n -> n >= 4 && n <= 9);
    }
  }

  @Test
  void levelsAreReproducible() {
    assertThat(prompts(SYNTHETIC.forLevel(3), 0, 20))
        .isEqualTo(prompts(SYNTHETIC.forLevel(3), 0, 20))
        .isNotEqualTo(prompts(SYNTHETIC.forLevel(2), 0, 20));
  }

  @Test
  void aFilesPromptsAreTheSameAtEveryLevel(@TempDir Path dir) throws Exception {
    Path file = Files.writeString(dir.resolve("p.txt"), "first prompt\n\nsecond prompt\nthird\n");
    PromptSource s = PromptSource.fromFile(file, new LengthDist.Fixed(3), 1);
    assertThat(s.forLevel(2)).isSameAs(s);
    assertThat(prompts(s, 0, 4))
        .containsExactly("first prompt", "second prompt", "third", "first prompt");
  }

  @Test
  void aNegativeLevelIsRefused() {
    assertThatThrownBy(() -> SYNTHETIC.forLevel(-1))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("level must be >= 0, got -1");
  }
}
