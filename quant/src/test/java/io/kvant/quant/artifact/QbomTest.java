package io.kvant.quant.artifact;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The one QBOM: both forms round-trip, and a bad document is refused naming the field. */
class QbomTest {
  static final String SHA = "b".repeat(64);

  static Qbom sample() {
    return new Qbom(
        "stories",
        "v2",
        Optional.of("v1"),
        "w8",
        "ci@example",
        Optional.of(SHA),
        Instant.parse("2026-11-24T10:00:00Z"),
        List.of(
            new QbomEntry(
                "blk.0.attn_q.weight",
                "q",
                "I8",
                8,
                0,
                "symmetric/per_channel",
                "minmax",
                SHA,
                SHA,
                QbomEntry.Origin.RECALIBRATED),
            new QbomEntry(
                "output_norm.weight",
                "norms",
                "F32",
                32,
                0,
                "full",
                "none",
                "none",
                SHA,
                QbomEntry.Origin.INHERITED)));
  }

  @Test
  void bothFormsRoundTrip() {
    Qbom q = sample();
    assertThat(Qbom.parse(q.toJson())).isEqualTo(q);
    assertThat(q.toJsonLine()).doesNotContain("\n");
    assertThat(Qbom.parse(q.toJsonLine())).isEqualTo(q);
    Qbom folder =
        new Qbom("m", "v", Optional.empty(), "w8", "p", Optional.empty(), q.time(), q.entries());
    assertThat(folder.toJson()).doesNotContain("parent", "manifest_sha256");
    assertThat(Qbom.parse(folder.toJson())).isEqualTo(folder);
  }

  @Test
  void namesTheFieldItRejects() {
    String ok = sample().toJsonLine();
    String[][] cases = {
      {"\"schema\":\"kvant.qbom/2\"", "\"schema\":\"kvant.qbom/1\"", "qbom.schema"},
      {"\"time\":\"2026-11-24T10:00:00Z\"", "\"time\":\"soon\"", "qbom.time"},
      {"\"model\":\"stories\"", "\"model\":1", "qbom.model"},
      {"\"bits\":8", "\"bits\":\"8\"", "entries[0].bits"},
      {"\"origin\":\"recalibrated\"", "\"origin\":\"magic\"", "entries[0].origin"},
      {"\"tensor\":\"output_norm.weight\"", "\"tensor\":null", "entries[1].tensor"},
      {"\"entries\":[", "\"entries\":{}, \"x\":[", "qbom.entries"},
    };
    for (String[] c : cases) {
      String s = ok.replace(c[0], c[1]);
      assertThat(s).as(c[0]).isNotEqualTo(ok);
      assertThatThrownBy(() -> Qbom.parse(s))
          .as(c[1])
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageStartingWith(c[2]);
    }
    assertThatThrownBy(() -> Qbom.parse("{"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("qbom: not valid JSON");
  }
}
