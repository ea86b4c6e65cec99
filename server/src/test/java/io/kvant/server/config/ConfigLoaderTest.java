package io.kvant.server.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConfigLoaderTest {
  @TempDir Path dir;
  Path model;

  @BeforeEach
  void makeModel() throws IOException {
    model = Files.writeString(dir.resolve("tiny.gguf"), "x");
  }

  private ServerConfig load(Map<String, String> env, String... args) throws ConfigException {
    return new ConfigLoader(env).load(List.of(args));
  }

  @Test
  void interopSettingsComeFromFlagsFileAndTheInjectedEnvironment() throws Exception {
    ServerConfig d = load(Map.of(), "--model", model.toString());
    assertThat(d.interop().httpPort()).isEmpty();
    assertThat(d.interop().logFormat()).isEqualTo("text");
    Path template = Files.writeString(dir.resolve("t.jinja"), "{{ messages }}");
    Path yaml =
        Files.writeString(dir.resolve("k.yaml"), "http: {port: 8080}\nlog: {format: json}\n");
    ServerConfig c =
        load(
            Map.of("OTEL_SERVICE_NAME", "svc", "HOME", "/root"),
            "--config",
            yaml.toString(),
            "--model",
            model.toString(),
            "--chat-template",
            template.toString());
    assertThat(c.interop().httpPort()).hasValue(8080);
    assertThat(c.interop().logFormat()).isEqualTo("json");
    assertThat(c.interop().chatTemplate()).hasValue(template);
    assertThat(c.interop().otelEnv()).isEqualTo(Map.of("OTEL_SERVICE_NAME", "svc"));
    assertThatThrownBy(() -> load(Map.of(), "--model", model.toString(), "--log-format", "xml"))
        .hasMessage("--log-format: must be text or json, got 'xml'");
    assertThatThrownBy(
            () -> load(Map.of(), "--model", model.toString(), "--chat-template", "nope.jinja"))
        .hasMessage("--chat-template: nope.jinja is not a file");
    assertThatThrownBy(() -> load(Map.of(), "--model", model.toString(), "--http-port", "70000"))
        .hasMessage("--http-port: must be in [0, 65535], got 70000");
  }

  @Test
  void defaultsApplyWhenOnlyTheModelIsGiven() throws Exception {
    ServerConfig c = load(Map.of(), "--model", model.toString());
    assertThat(c.port()).isEqualTo(50051);
    assertThat(c.model().name()).isEqualTo("tiny");
    assertThat(c.model().kvType()).isEqualTo("f32");
    assertThat(c.scheduler().blockSize()).isEqualTo(16);
    assertThat(c.drainTimeout()).isEqualTo(Duration.ofSeconds(30));
    assertThat(c.security().adminToken()).isEmpty();
  }

  @Test
  void bundledModelIsFoundUnderKvantHome() throws Exception {
    Path bundled = dir.resolve(ConfigLoader.BUNDLED_MODEL);
    Files.createDirectories(bundled.getParent());
    Files.writeString(bundled, "x");
    ServerConfig c = load(Map.of("KVANT_HOME", dir.toString()));
    assertThat(c.model().path()).isEqualTo(bundled);
  }

  @Test
  void missingBundledModelSaysWhichFlagToPass() {
    assertThatThrownBy(() -> load(Map.of("KVANT_HOME", dir.resolve("nowhere").toString())))
        .isInstanceOf(ConfigException.class)
        .hasMessageContaining("pass --model PATH");
  }

  @Test
  void yamlFileIsReadAndFlagsWin() throws Exception {
    Path yaml =
        Files.writeString(
            dir.resolve("kvant.yaml"),
            """
            port: 6000
            model:
              path: %s
              kv: int8
            scheduler:
              max_queue: 7
            """
                .formatted(model));
    ServerConfig c = load(Map.of(), "--config", yaml.toString(), "--port", "6001");
    assertThat(c.port()).isEqualTo(6001);
    assertThat(c.model().kvType()).isEqualTo("int8");
    assertThat(c.scheduler().maxQueue()).isEqualTo(7);
  }

  @Test
  void kvEncodingIsCheckedAgainstTheDeviceAndTheKvType() throws Exception {
    String m = model.toString();
    assertThat(load(Map.of(), "--model", m, "--kv", "int8").model().kvEncoding()).isEmpty();
    assertThat(
            load(Map.of(), "--model", m, "--kv", "fp8", "--kv-encoding", "hadamard-mse")
                .model()
                .kvEncoding())
        .isEqualTo("hadamard-mse");
    Path yaml =
        Files.writeString(dir.resolve("e.yaml"), "model:\n  kv: int8\n  kv_encoding: kivi\n");
    assertThat(load(Map.of(), "--model", m, "--config", yaml.toString()).model().kvEncoding())
        .isEqualTo("kivi");
    // the GPU implements per-token, per-token-mse, kivi, kivi-mse and the centered two: a rotated
    // encoding is refused, naming the option (the static ones are refused on every device)
    assertThatThrownBy(
            () ->
                load(
                    Map.of(),
                    "--model",
                    m,
                    "--device",
                    "cuda",
                    "--kv",
                    "int8",
                    "--kv-encoding",
                    "kivi-hadamard"))
        .hasMessage(
            "--kv-encoding kivi-hadamard: the CUDA backend encodes int8/fp8 KV per-token,"
                + " per-token-mse, kivi, kivi-mse, centered-mse or centered-qmse only; use --device"
                + " cpu, or leave the encoding unset (each device's default)");
    for (String e : new String[] {"per-token-mse", "kivi", "kivi-mse"}) {
      assertThat(
              load(Map.of(), "--model", m, "--device", "cuda", "--kv", "fp8", "--kv-encoding", e)
                  .model()
                  .kvEncoding())
          .isEqualTo(e);
    }
    assertThat(
            load(
                    Map.of(),
                    "--model",
                    m,
                    "--device",
                    "cuda",
                    "--kv",
                    "int8",
                    "--kv-encoding",
                    "per-token")
                .model()
                .kvEncoding())
        .isEqualTo("per-token");
    assertThatThrownBy(() -> load(Map.of(), "--model", m, "--kv-encoding", "kivi"))
        .hasMessage("--kv-encoding kivi: applies to --kv int8 or fp8 only, the KV cache is f32");
    assertThatThrownBy(
            () -> load(Map.of(), "--model", m, "--kv", "int8", "--kv-encoding", "static"))
        .hasMessageStartingWith("--kv-encoding static: static scales come from a calibration");
    // centered keys: calibrated at load (KvCalibrationAtLoad) on either device
    for (String e : new String[] {"centered-mse", "centered-qmse"}) {
      assertThat(
              load(Map.of(), "--model", m, "--kv", "fp8", "--kv-encoding", e).model().kvEncoding())
          .isEqualTo(e);
      for (String kv : new String[] {"int8", "fp8"}) {
        assertThat(
                load(Map.of(), "--model", m, "--device", "cuda", "--kv", kv, "--kv-encoding", e)
                    .model()
                    .kvEncoding())
            .isEqualTo(e);
      }
    }
    assertThatThrownBy(
            () ->
                load(
                    Map.of(),
                    "--model",
                    m,
                    "--device",
                    "cuda",
                    "--kv",
                    "f16",
                    "--kv-encoding",
                    "centered-qmse"))
        .hasMessage(
            "--kv-encoding centered-qmse: applies to --kv int8 or fp8 only, the KV cache is f16");
    assertThatThrownBy(() -> load(Map.of(), "--model", m, "--kv-encoding", "kivvi"))
        .hasMessageStartingWith("--kv-encoding: must be one of per-token, hadamard");
  }

  @Test
  void badValuesNameTheSettingAndWhereItCameFrom() throws Exception {
    Path yaml = Files.writeString(dir.resolve("bad.yaml"), "scheduler:\n  max_queue: 0\n");
    assertThatThrownBy(
            () -> load(Map.of(), "--model", model.toString(), "--config", yaml.toString()))
        .hasMessage(yaml + ": scheduler.max_queue: must be in [1, 1000000], got 0");
    assertThatThrownBy(() -> load(Map.of(), "--model", model.toString(), "--port", "70000"))
        .hasMessage("--port: must be in [0, 65535], got 70000");
    assertThatThrownBy(() -> load(Map.of(), "--model", model.toString(), "--kv", "int3"))
        .hasMessage("--kv: must be one of f32, f16, int8, fp8, got 'int3'");
    assertThatThrownBy(() -> load(Map.of(), "--model", model.toString(), "--device", "gpu"))
        .hasMessage("--device: must be one of cpu, cuda, auto; got 'gpu'");
    assertThatThrownBy(() -> load(Map.of(), "--model", model.toString(), "--kv", "f16"))
        .hasMessage("--kv: f16 KV storage needs --device cuda (the CPU has f32, int8, fp8)");
    assertThat(
            load(Map.of(), "--model", model.toString(), "--device", "cuda", "--kv", "int8")
                .model()
                .kvType())
        .isEqualTo("int8");
    assertThat(load(Map.of(), "--model", model.toString(), "--device", "cuda").model().kvType())
        .isEqualTo("f16");
    assertThat(
            load(Map.of(), "--model", model.toString(), "--device", "cuda", "--kv-cache-mb", "auto")
                .scheduler()
                .kvCacheBytes())
        .isZero();
    assertThatThrownBy(() -> load(Map.of(), "--model", model.toString(), "--kv-cache-mb", "auto"))
        .hasMessage(
            "--kv-cache-mb: auto sizes the KV cache from free device memory and needs --device"
                + " cuda or auto; give a size in MiB for the CPU");
    assertThatThrownBy(() -> load(Map.of(), "--model", model.toString(), "--weights", "w3"))
        .hasMessageStartingWith("--weights: unknown recipe 'w3'");
    assertThatThrownBy(() -> load(Map.of(), "--model", model.toString(), "--threads", "two"))
        .hasMessage("--threads: must be an integer, got 'two'");
    assertThatThrownBy(() -> load(Map.of(), "--modle", "x"))
        .hasMessageContaining("unknown flag --modle");
    Path unknown = Files.writeString(dir.resolve("u.yaml"), "prot: 1\n");
    assertThatThrownBy(() -> load(Map.of(), "--config", unknown.toString()))
        .hasMessage(unknown + ": unknown setting 'prot'");
    Path broken = Files.writeString(dir.resolve("b.yaml"), "port: [1, \n");
    assertThatThrownBy(() -> load(Map.of(), "--config", broken.toString()))
        .hasMessageStartingWith(broken + ": not valid YAML");
  }

  @Test
  void tokensComeFromFilesOrTheEnvironment() throws Exception {
    Path tokenFile = Files.writeString(dir.resolve("admin.token"), "s3cret\n");
    ServerConfig c =
        load(
            Map.of("GEN_TOKEN", "g3n"),
            "--model",
            model.toString(),
            "--admin-token-file",
            tokenFile.toString(),
            "--generation-token-env",
            "GEN_TOKEN");
    assertThat(c.security().adminToken()).contains("s3cret");
    assertThat(c.security().generationToken()).contains("g3n");
    assertThatThrownBy(
            () -> load(Map.of(), "--model", model.toString(), "--admin-token-env", "NOPE"))
        .hasMessage("--admin-token-env: environment variable NOPE is not set");
  }

  @Test
  void tlsNeedsCertificateAndKeyTogether() throws Exception {
    Path cert = Files.writeString(dir.resolve("c.pem"), "x");
    assertThatThrownBy(
            () -> load(Map.of(), "--model", model.toString(), "--tls-cert", cert.toString()))
        .hasMessageContaining("TLS needs both a certificate and a key");
  }
}
