package io.kvant.server.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code kvant eval --device}: cpu and auto (which falls back to the CPU with one line where, as on
 * CI, no GPU is usable) give the same comparison; a bad device is a usage error naming the flag.
 * The CUDA path itself runs on a GPU host only (the backend it loads is tested there).
 */
class EvalDeviceTest {
  private static final String MODEL = Path.of("../models/kvant-kjv-7m.gguf").toString();

  private record Run(int code, String out, String err) {}

  private static Run eval(List<String> args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int code =
        new EvalCommand(
                new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8),
                Map.of())
            .run(args);
    return new Run(
        code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  @Test
  void autoWithoutAGpuGivesTheCpuResultAndSaysWhy(@TempDir Path dir) throws Exception {
    Path text = genesisText(dir);
    List<String> common =
        List.of(
            "--model",
            MODEL,
            "--weights",
            "w8",
            "--text",
            text.toString(),
            "--max-len",
            "24",
            "--threads",
            "1");
    Run cpu = eval(concat(common, "--device", "cpu"));
    Run auto = eval(concat(common, "--device", "auto"));
    assertThat(cpu.code()).as(cpu.err()).isZero();
    assertThat(auto.code()).as(auto.err()).isZero();
    ObjectMapper json = new ObjectMapper();
    JsonNode a = json.readTree(cpu.out());
    JsonNode b = json.readTree(auto.out());
    assertThat(a.get("device").asText()).startsWith("cpu");
    assertThat(a.get("positions").asInt()).isPositive();
    if (b.get("device").asText().startsWith("cpu")) {
      assertThat(auto.err()).contains("--device auto:").contains("running on the CPU");
      ((ObjectNode) a).remove("device");
      ((ObjectNode) b).remove("device");
      assertThat(b).isEqualTo(a);
    } else {
      // A GPU host: the same comparison on the GPU agrees on the figures that matter.
      assertThat(b.get("top1_agreement_excluding_ties").asDouble())
          .isCloseTo(
              a.get("top1_agreement_excluding_ties").asDouble(),
              org.assertj.core.data.Offset.offset(0.02));
    }
  }

  @Test
  void anUnknownDeviceIsAUsageErrorNamingTheFlag() {
    Run r = eval(List.of("--model", MODEL, "--weights", "w8", "--device", "tpu"));
    assertThat(r.code()).isEqualTo(2);
    assertThat(r.err()).contains("--device").contains("tpu");
  }

  /**
   * {@code --simulate-w8a8}: the W8A8 run is compared with full precision and with the same
   * artifact's weight-only products; it needs W8A8 matrices and the CPU.
   */
  @Test
  void simulatedW8a8ReportsBothComparisons(@TempDir Path dir) throws Exception {
    Path text = genesisText(dir);
    List<String> common =
        List.of("--model", MODEL, "--text", text.toString(), "--max-len", "24", "--threads", "1");
    Run sim = eval(concat(concat(common, "--weights", "w8:smoothquant"), "--simulate-w8a8"));
    assertThat(sim.code()).as(sim.err()).isZero();
    JsonNode line = new ObjectMapper().readTree(sim.out());
    assertThat(line.get("recipe").asText()).isEqualTo("w8:smoothquant");
    assertThat(line.get("simulate_w8a8").asBoolean()).isTrue();
    assertThat(line.get("w8a8_vs_weight_only_top1_excluding_ties").asDouble()).isGreaterThan(0.5);
    assertThat(line.get("w8a8_vs_weight_only_mean_kl").asDouble()).isPositive();
    Run f32 = eval(concat(concat(common, "--weights", "f32"), "--simulate-w8a8"));
    assertThat(f32.code()).isEqualTo(2);
    assertThat(f32.err()).contains("--simulate-w8a8").contains("no INT8");
    Run sens = eval(concat(concat(common, "--weights", "w8", "--sensitivity"), "--simulate-w8a8"));
    assertThat(sens.code()).isEqualTo(2);
    assertThat(sens.err()).contains("--simulate-w8a8 runs on --device cpu");
  }

  @Test
  void kvEncodingIsCheckedAndNamedInTheOutput(@TempDir Path dir) throws Exception {
    Run f32 = eval(List.of("--model", MODEL, "--weights", "f32", "--kv-encoding", "hadamard"));
    assertThat(f32.code()).isEqualTo(2);
    assertThat(f32.err()).contains("--kv-encoding hadamard").contains("int8 or fp8");
    Run bad = eval(List.of("--model", MODEL, "--weights", "f32", "--kv-encoding", "kivvi"));
    assertThat(bad.code()).isEqualTo(2);
    assertThat(bad.err()).contains("--kv-encoding").contains("kivvi");
    Path text = dir.resolve("text.txt");
    Files.writeString(text, "In the beginning God created the heaven and the earth.");
    Run ok =
        eval(
            List.of(
                "--model",
                MODEL,
                "--weights",
                "f32",
                "--kv",
                "int8",
                "--kv-encoding",
                "hadamard",
                "--text",
                text.toString(),
                "--max-len",
                "16",
                "--threads",
                "1"));
    assertThat(ok.code()).as(ok.err()).isZero();
    JsonNode line = new ObjectMapper().readTree(ok.out());
    assertThat(line.get("kv_encoding").asText()).isEqualTo("hadamard");
    assertThat(line.get("top1_agreement").asDouble()).isGreaterThan(0.5);
    // unset: the CPU's default for the type; static: calibrated over --calibration in memory
    List<String> small =
        List.of(
            "--model",
            MODEL,
            "--weights",
            "f32",
            "--text",
            text.toString(),
            "--calibration",
            text.toString(),
            "--max-len",
            "16",
            "--threads",
            "1");
    for (String[] kvAndEncoding :
        new String[][] {
          {"int8", null, "kivi"}, {"fp8", null, "per-token-mse"}, {"int8", "static", "static"}
        }) {
      List<String> args = concat(small, "--kv", kvAndEncoding[0]);
      if (kvAndEncoding[1] != null) {
        args = concat(args, "--kv-encoding", kvAndEncoding[1]);
      }
      Run r = eval(args);
      assertThat(r.code()).as(r.err()).isZero();
      JsonNode l = new ObjectMapper().readTree(r.out());
      assertThat(l.get("kv_encoding").asText()).isEqualTo(kvAndEncoding[2]);
      assertThat(l.get("top1_agreement").asDouble()).isGreaterThan(0.5);
    }
  }

  /** Two verses of the bundled model's own text, written to {@code dir}: the file to evaluate. */
  private static Path genesisText(Path dir) throws java.io.IOException {
    Path text = dir.resolve("text.txt");
    Files.writeString(
        text,
        "In the beginning God created the heaven and the earth. And the earth was without form,"
            + " and void; and darkness was upon the face of the deep.");
    return text;
  }

  private static List<String> concat(List<String> a, String... more) {
    java.util.ArrayList<String> all = new java.util.ArrayList<>(a);
    all.addAll(List.of(more));
    return all;
  }
}
