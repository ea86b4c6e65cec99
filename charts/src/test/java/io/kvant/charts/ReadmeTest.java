package io.kvant.charts;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The chart README's table documents every value, so a new value can't ship undocumented. */
class ReadmeTest {
  @Test
  void everyValueIsInTheReadmeTable() throws IOException {
    JsonNode values =
        new ObjectMapper(new YAMLFactory())
            .readTree(ChartFixture.CHART.resolve("values.yaml").toFile());
    List<String> keys = new ArrayList<>();
    leaves("", values, keys);
    String readme = Files.readString(ChartFixture.CHART.resolve("README.md"));
    assertThat(keys).hasSizeGreaterThan(80);
    assertThat(keys).allSatisfy(k -> assertThat(readme).contains("| `" + k + "` |"));
  }

  private static void leaves(String prefix, JsonNode node, List<String> out) {
    node.properties()
        .forEach(
            e -> {
              String key = prefix + e.getKey();
              // model.volume is one Kubernetes volume source, documented as a whole.
              if (e.getValue().isObject()
                  && !e.getValue().isEmpty()
                  && !key.equals("model.volume")) {
                leaves(key + ".", e.getValue(), out);
              } else {
                out.add(key);
              }
            });
  }
}
