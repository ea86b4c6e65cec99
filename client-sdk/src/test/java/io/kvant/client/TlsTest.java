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
import java.nio.file.Path;
import java.time.Duration;
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

  @BeforeAll
  static void makeCertificates() throws Exception {
    assumeTrue(TestCertificates.opensslAvailable(), "openssl is not installed");
    TestCertificates.create(dir);
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
