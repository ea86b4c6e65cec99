package io.kvant.client;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.grpc.Server;
import io.grpc.ServerCredentials;
import io.grpc.TlsServerCredentials;
import io.grpc.stub.StreamObserver;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.GenerateResponse;
import io.kvant.api.v1.GenerationGrpc;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** TLS and mutual TLS with a throwaway CA made by {@code openssl} (skipped without it). */
@Timeout(30)
class TlsTest {
  @TempDir static Path dir;
  private static final GenerateParams PARAMS = GenerateParams.builder().prompt("x").build();

  static final class Hello extends GenerationGrpc.GenerationImplBase {
    @Override
    public void generate(GenerateRequest request, StreamObserver<GenerateResponse> out) {
      out.onNext(GenerateResponse.newBuilder().setText("over tls").build());
      out.onCompleted();
    }
  }

  private static void openssl(String... args) throws IOException, InterruptedException {
    List<String> cmd = new java.util.ArrayList<>(List.of("openssl"));
    cmd.addAll(List.of(args));
    Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    if (!p.waitFor(20, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new IllegalStateException("openssl " + String.join(" ", args) + " failed: " + out);
    }
  }

  /** A P-256 key (PKCS#8 PEM) and a certificate for it signed by the test CA. */
  private static void issue(String name, String extensions) throws Exception {
    Files.writeString(dir.resolve(name + ".ext"), extensions);
    openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        name + ".key",
        "-out",
        name + ".csr",
        "-subj",
        "/CN=" + name);
    openssl(
        "x509",
        "-req",
        "-in",
        name + ".csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        name + ".pem",
        "-extfile",
        name + ".ext");
  }

  @BeforeAll
  static void makeCertificates() throws Exception {
    boolean haveOpenssl;
    try {
      haveOpenssl = new ProcessBuilder("openssl", "version").start().waitFor() == 0;
    } catch (IOException e) {
      haveOpenssl = false;
    }
    assumeTrue(haveOpenssl, "openssl is not installed");
    openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=kvant test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign");
    issue("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
    issue("client", "extendedKeyUsage=clientAuth\n");
  }

  private static Server tlsServer(boolean requireClientCertificate) {
    try {
      TlsServerCredentials.Builder creds =
          TlsServerCredentials.newBuilder()
              .keyManager(dir.resolve("server.pem").toFile(), dir.resolve("server.key").toFile());
      if (requireClientCertificate) {
        creds
            .trustManager(dir.resolve("ca.pem").toFile())
            .clientAuth(TlsServerCredentials.ClientAuth.REQUIRE);
      }
      ServerCredentials c = creds.build();
      return TestServers.start(c, new Hello());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static KvantClient.Builder client(Server server) {
    return KvantClient.builder()
        .targets(TestServers.target(server))
        .defaultDeadline(Duration.ofSeconds(10))
        .retryPolicy(RetryPolicy.none());
  }

  @Test
  void tlsWithAPrivateCa() throws Exception {
    Server server = tlsServer(false);
    try (KvantClient tls = client(server).trustCertificate(dir.resolve("ca.pem")).build();
        KvantClient plaintext = client(server).build()) {
      assertThat(tls.generate(PARAMS).text()).isEqualTo("over tls");
      assertThatThrownBy(() -> plaintext.generate(PARAMS)).isInstanceOf(UnavailableException.class);
    } finally {
      TestServers.stop(server);
    }
  }

  @Test
  void mutualTls() throws Exception {
    Server server = tlsServer(true);
    try (KvantClient withCert =
            client(server)
                .trustCertificate(dir.resolve("ca.pem"))
                .clientCertificate(dir.resolve("client.pem"), dir.resolve("client.key"))
                .build();
        KvantClient withoutCert = client(server).trustCertificate(dir.resolve("ca.pem")).build()) {
      assertThat(withCert.generate(PARAMS).text()).isEqualTo("over tls");
      assertThatThrownBy(() -> withoutCert.generate(PARAMS))
          .isInstanceOf(UnavailableException.class);
    } finally {
      TestServers.stop(server);
    }
  }

  @Test
  void aMissingPemFileFailsTheBuild() {
    assertThatThrownBy(
            () ->
                KvantClient.builder()
                    .targets("127.0.0.1:1")
                    .trustCertificate(dir.resolve("missing.pem"))
                    .build())
        .isInstanceOf(UncheckedIOException.class);
  }
}
