package io.kvant.charts;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.tuple;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeMount;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The sidecar pattern ({@code sidecar.enabled}): kvant as a native sidecar of an application's pod,
 * serving gRPC on a Unix socket in a shared emptyDir, beside the default Deployment + Service
 * layout.
 */
class SidecarRenderTest {
  static final String SOCKET = "/run/kvant/kvant.sock";

  private static PodSpec pod(ChartFixture.Rendered r) {
    return r.deployment().getSpec().getTemplate().getSpec();
  }

  @Test
  void kvantIsANativeSidecarOfTheApplicationsPod() {
    ChartFixture.Rendered r = ChartFixture.render("sidecar.yaml");
    PodSpec pod = pod(r);
    assertThat(pod.getContainers()).extracting(Container::getName).containsExactly("orders");
    assertThat(pod.getInitContainers()).extracting(Container::getName).containsExactly("kvant");
    Container kvant = pod.getInitContainers().get(0);
    // restartPolicy Always on an init container: started before the application (after its
    // startup probe passes) and stopped after it.
    assertThat(kvant.getRestartPolicy()).isEqualTo("Always");
    assertThat(kvant.getStartupProbe().getGrpc().getPort()).isEqualTo(50051);
    assertThat(kvant.getLifecycle()).as("no preStop sleep: nothing routes to kvant").isNull();
  }

  @Test
  void applicationAndKvantShareTheSocketFolder() {
    ChartFixture.Rendered r = ChartFixture.render("sidecar.yaml");
    PodSpec pod = pod(r);
    Container kvant = r.container();
    Container app = pod.getContainers().get(0);

    Volume socketVolume =
        pod.getVolumes().stream()
            .filter(v -> v.getName().equals("kvant-socket"))
            .findFirst()
            .orElseThrow();
    assertThat(socketVolume.getEmptyDir()).isNotNull();
    assertThat(socketVolume.getEmptyDir().getMedium()).isEqualTo("Memory");
    for (Container c : List.of(kvant, app)) {
      assertThat(c.getVolumeMounts())
          .extracting(VolumeMount::getName, VolumeMount::getMountPath)
          .contains(tuple("kvant-socket", "/run/kvant"));
    }
    // The socket is rw-rw---- in this group: every container of the pod is a member.
    assertThat(pod.getSecurityContext().getFsGroup()).isEqualTo(65532L);
    // The application's own settings are kept; the target to dial is added.
    assertThat(app.getImage()).isEqualTo("registry.example.com/orders:1.4.2");
    assertThat(app.getVolumeMounts()).extracting(VolumeMount::getName).contains("tmp");
    assertThat(app.getEnv())
        .extracting(EnvVar::getName, EnvVar::getValue)
        .contains(
            tuple("SPRING_PROFILES_ACTIVE", "prod"), tuple("KVANT_TARGET", "unix://" + SOCKET));
    assertThat(app.getResources().getRequests().get("cpu").toString()).isEqualTo("500m");
  }

  @Test
  void kvantListensOnTheSocketAndKeepsTcpForItsProbes() {
    ChartFixture.Rendered r = ChartFixture.render("sidecar.yaml");
    assertThat(r.config()).containsEntry("listen", "unix://" + SOCKET + ",tcp");
    assertThat(ChartFixture.serverConfigKeys()).contains("listen");
    assertThat(r.container().getReadinessProbe().getGrpc().getPort()).isEqualTo(50051);
    // The application reaches kvant inside the pod: no Service for it.
    assertThat(r.kinds()).doesNotContain("Service").contains("Deployment", "ConfigMap");
  }

  @Test
  void graceCoversTheApplicationsShutdownThenKvantsDrain() {
    ChartFixture.Rendered r =
        ChartFixture.render(
            List.of("sidecar.yaml"),
            Map.of(
                "sidecar.applicationShutdownSeconds", 20,
                "server.drainTimeoutSeconds", 40,
                "server.terminationGraceMarginSeconds", 5));
    assertThat(pod(r).getTerminationGracePeriodSeconds()).isEqualTo(65L);
  }

  @Test
  void socketFolderFollowsTheValue() {
    ChartFixture.Rendered r =
        ChartFixture.render(List.of("sidecar.yaml"), Map.of("sidecar.socketDir", "/var/run/llm"));
    assertThat(r.config()).containsEntry("listen", "unix:///var/run/llm/kvant.sock,tcp");
    Container app = pod(r).getContainers().get(0);
    assertThat(app.getEnv())
        .extracting(EnvVar::getName, EnvVar::getValue)
        .contains(tuple("KVANT_TARGET", "unix:///var/run/llm/kvant.sock"));
  }

  @Test
  void metricsAreScrapedFromThePods() {
    ChartFixture.Rendered r =
        ChartFixture.render(
            List.of("sidecar.yaml"), Map.of("metrics.serviceMonitor.enabled", "true"));
    GenericKubernetesResource monitor = r.one(GenericKubernetesResource.class);
    assertThat(monitor.getKind()).isEqualTo("PodMonitor");
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> endpoints =
        (List<Map<String, Object>>) monitor.get("spec", "podMetricsEndpoints");
    assertThat(endpoints)
        .singleElement()
        .satisfies(e -> assertThat(e).containsEntry("port", "metrics"));
  }

  @Test
  void theDefaultLayoutIsUnchanged() {
    ChartFixture.Rendered r = ChartFixture.render();
    assertThat(pod(r).getContainers()).extracting(Container::getName).containsExactly("kvant");
    assertThat(pod(r).getInitContainers()).isEmpty();
    assertThat(r.container().getRestartPolicy()).isNull();
    assertThat(r.container().getLifecycle().getPreStop().getSleep().getSeconds()).isPositive();
    assertThat(r.config()).doesNotContainKey("listen");
    assertThat(r.kinds()).contains("Service");
  }

  @Test
  void badCombinationsAreRefusedByName() {
    assertThatThrownBy(
            () ->
                ChartFixture.render(
                    List.of(), Map.of("sidecar.enabled", "true", "sidecar.application.name", "x")))
        .hasMessageContaining("sidecar.application.image is required");
    assertThatThrownBy(
            () ->
                ChartFixture.render(
                    List.of("sidecar.yaml"), Map.of("networkPolicy.enabled", "true")))
        .hasMessageContaining("networkPolicy.enabled does not go with sidecar.enabled");
    assertThatThrownBy(
            () -> ChartFixture.render(List.of("sidecar.yaml"), Map.of("sidecar.socketDir", "run")))
        .hasMessageContaining("socketDir");
  }
}
