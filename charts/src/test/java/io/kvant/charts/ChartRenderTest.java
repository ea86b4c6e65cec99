package io.kvant.charts;

import static org.assertj.core.api.Assertions.assertThat;

import com.marcnuri.helm.Helm;
import com.marcnuri.helm.LintResult;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerPort;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.PodSecurityContext;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Probe;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.SecurityContext;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServicePort;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.autoscaling.v2.MetricSpec;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Lints the chart and renders it with the defaults and with value sets for the ways it is deployed
 * (GPU pool, autoscaling, S3 hot swap, mutual TLS), then checks the parsed objects: what keeps a
 * rolling update from dropping requests (probes, drain, grace period), what the restricted Pod
 * Security Standard demands, and that the server's config file is what the values said.
 */
class ChartRenderTest {
  /** Every value set in src/test/resources/values, and the defaults (no file). */
  static Stream<Arguments> valueSets() {
    return Stream.of(
        Arguments.of(List.of()),
        Arguments.of(List.of("gpu.yaml")),
        Arguments.of(List.of("hpa.yaml")),
        Arguments.of(List.of("s3.yaml")),
        Arguments.of(List.of("tls.yaml")),
        Arguments.of(List.of("gpu.yaml", "hpa.yaml", "s3.yaml", "tls.yaml")));
  }

  @Test
  void lintPassesInStrictMode() {
    LintResult lint = new Helm(ChartFixture.CHART).lint().strict().call();
    assertThat(lint.isFailed()).as("%s", lint.getMessages()).isFalse();
    assertThat(lint.getMessages()).noneMatch(m -> m.contains("[ERROR]") || m.contains("[WARNING]"));
  }

  @Test
  void defaultsRenderTheCoreObjectsOnly() {
    assertThat(ChartFixture.render().kinds())
        .containsExactly(
            "ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount");
  }

  @ParameterizedTest
  @MethodSource("valueSets")
  void everyObjectParsesWithLabelsAndNoSecretIsRendered(List<String> files) {
    ChartFixture.Rendered r = ChartFixture.render(files, Map.of());
    for (HasMetadata o : r.objects()) {
      assertThat(o.getMetadata().getName()).startsWith(ChartFixture.FULLNAME);
      assertThat(o.getMetadata().getLabels())
          .containsEntry("app.kubernetes.io/name", "kvant")
          .containsEntry("app.kubernetes.io/instance", ChartFixture.RELEASE);
    }
    // Credentials only ever come from Secrets the operator created: the chart makes none.
    assertThat(r.kinds()).doesNotContain("Secret");
    for (EnvVar e : r.container().getEnv()) {
      if (e.getName().startsWith("AWS_") && e.getName().matches(".*(KEY|TOKEN).*")) {
        assertThat(e.getValue()).as(e.getName()).isNull();
        assertThat(e.getValueFrom().getSecretKeyRef()).as(e.getName()).isNotNull();
      }
    }
    // A typo in a template (e.g. "readinesProbe") lands in fabric8's catch-all, not in a field.
    PodSpec pod = r.deployment().getSpec().getTemplate().getSpec();
    assertThat(pod.getAdditionalProperties()).isEmpty();
    assertThat(r.container().getAdditionalProperties()).isEmpty();
  }

  @ParameterizedTest
  @MethodSource("valueSets")
  void selectorsOfServicePdbAndDeploymentPickTheSamePods(List<String> files) {
    ChartFixture.Rendered r = ChartFixture.render(files, Map.of());
    Map<String, String> podLabels =
        r.deployment().getSpec().getTemplate().getMetadata().getLabels();
    assertThat(podLabels)
        .containsAllEntriesOf(r.deployment().getSpec().getSelector().getMatchLabels());
    for (Service s : r.all(Service.class)) {
      assertThat(podLabels).containsAllEntriesOf(s.getSpec().getSelector());
    }
    assertThat(podLabels)
        .containsAllEntriesOf(
            r.one(PodDisruptionBudget.class).getSpec().getSelector().getMatchLabels());
  }

  @ParameterizedTest
  @MethodSource("valueSets")
  void configMapUsesOnlyKeysTheServerAccepts(List<String> files) {
    Map<String, String> config = ChartFixture.render(files, Map.of()).config();
    // ConfigLoader fails start-up on an unknown key, so one stray key would crash every pod.
    assertThat(ChartFixture.serverConfigKeys()).hasSizeGreaterThan(20).containsAll(config.keySet());
    assertThat(config).containsKeys("port", "drain_timeout_seconds", "model.path", "metrics.port");
  }

  @Test
  void configMapCarriesTheValuesUnderTheServersKeyNames() {
    Map<String, String> config = ChartFixture.render("s3.yaml").config();
    assertThat(config)
        .containsEntry("bucket", "s3://models-prod/llama")
        // The agent stages downloads on the writable staging volume, not the read-only root.
        .containsEntry("agent.staging_dir", "/var/lib/kvant/staging")
        .containsEntry("agent.qbom_dir", "/var/cache/kvant/qbom")
        .containsEntry("model.path", "/models/llama-3-8b.gguf")
        .containsEntry("model.name", "llama-3-8b")
        .containsEntry("model.weights", "w4g128")
        .containsEntry("model.kv", "int8")
        .containsEntry("model.default_max_tokens", "512")
        .containsEntry("scheduler.kv_cache_mb", "4096")
        .containsEntry("scheduler.max_queue", "512")
        .containsEntry("scheduler.max_sequences", "128")
        .containsEntry("drain_timeout_seconds", "120")
        .containsEntry("metrics.otlp_endpoint", "http://otel-collector.observability.svc:4317")
        .containsEntry("security.admin_token_file", "/var/run/secrets/kvant/admin/token")
        // threads default to the CPU request: with no CPU limit the JVM would count node cores.
        .containsEntry("threads", "2");
    // Settings left empty stay out of the file, so the server's own defaults apply.
    assertThat(ChartFixture.render().config())
        .doesNotContainKeys("bucket", "model.name", "security.tls_cert");
  }

  @ParameterizedTest
  @MethodSource("valueSets")
  void probesUseTheGrpcHealthServiceAndAllowForModelLoad(List<String> files) {
    ChartFixture.Rendered r = ChartFixture.render(files, Map.of());
    Container c = r.container();
    boolean tls = files.contains("tls.yaml");
    for (Probe p : List.of(c.getStartupProbe(), c.getReadinessProbe(), c.getLivenessProbe())) {
      if (tls) {
        // The kubelet's gRPC probe cannot speak TLS: a TCP connect is the honest fallback.
        assertThat(p.getGrpc()).isNull();
        assertThat(p.getTcpSocket().getPort().getStrVal()).isEqualTo("grpc");
      } else {
        assertThat(p.getGrpc().getPort()).isEqualTo(50051);
        assertThat(p.getGrpc().getService()).isEmpty();
        assertThat(p.getTcpSocket()).isNull();
      }
    }
    Probe startup = c.getStartupProbe();
    assertThat(startup.getPeriodSeconds() * startup.getFailureThreshold())
        .isGreaterThanOrEqualTo(600);
    // Readiness must react within a few seconds so a NOT_SERVING pod leaves the endpoints fast.
    Probe ready = c.getReadinessProbe();
    assertThat(ready.getPeriodSeconds() * ready.getFailureThreshold()).isLessThanOrEqualTo(15);
  }

  @Test
  void startupProbeGrowsWithStartupSeconds() {
    Probe startup =
        ChartFixture.render(List.of(), Map.of("probes.startupSeconds", 1805))
            .container()
            .getStartupProbe();
    assertThat(startup.getFailureThreshold()).isEqualTo(181); // 1805 s / 10 s, rounded up
  }

  @ParameterizedTest
  @MethodSource("valueSets")
  void portsMatchTheServerConfig(List<String> files) {
    ChartFixture.Rendered r = ChartFixture.render(files, Map.of());
    Map<String, String> config = r.config();
    assertThat(r.container().getPorts())
        .extracting(ContainerPort::getName, ContainerPort::getContainerPort)
        .containsExactly(
            org.assertj.core.groups.Tuple.tuple("grpc", Integer.parseInt(config.get("port"))),
            org.assertj.core.groups.Tuple.tuple(
                "metrics", Integer.parseInt(config.get("metrics.port"))));
    Service svc =
        r.all(Service.class).stream()
            .filter(s -> s.getMetadata().getName().equals(ChartFixture.FULLNAME))
            .findFirst()
            .orElseThrow();
    assertThat(svc.getSpec().getPorts())
        .extracting(ServicePort::getName, ServicePort::getPort, p -> p.getTargetPort().getStrVal())
        .containsExactly(
            org.assertj.core.groups.Tuple.tuple("grpc", 50051, "grpc"),
            org.assertj.core.groups.Tuple.tuple("metrics", 9464, "metrics"));
  }

  @Test
  void customPortsReachConfigProbesAndService() {
    ChartFixture.Rendered r =
        ChartFixture.render(List.of(), Map.of("server.port", 8443, "metrics.port", 9000));
    assertThat(r.config()).containsEntry("port", "8443").containsEntry("metrics.port", "9000");
    assertThat(r.container().getReadinessProbe().getGrpc().getPort()).isEqualTo(8443);
    assertThat(r.container().getPorts())
        .extracting(ContainerPort::getContainerPort)
        .containsExactly(8443, 9000);
  }

  @ParameterizedTest
  @MethodSource("valueSets")
  void securityContextMeetsTheRestrictedPodSecurityStandard(List<String> files) {
    ChartFixture.Rendered r = ChartFixture.render(files, Map.of());
    PodSpec pod = r.deployment().getSpec().getTemplate().getSpec();
    PodSecurityContext psc = pod.getSecurityContext();
    assertThat(psc.getRunAsNonRoot()).isTrue();
    assertThat(psc.getRunAsUser()).isPositive();
    assertThat(psc.getSeccompProfile().getType()).isEqualTo("RuntimeDefault");
    SecurityContext sc = r.container().getSecurityContext();
    assertThat(sc.getAllowPrivilegeEscalation()).isFalse();
    assertThat(sc.getPrivileged()).isFalse();
    assertThat(sc.getReadOnlyRootFilesystem()).isTrue();
    assertThat(sc.getCapabilities().getDrop()).containsExactly("ALL");
    assertThat(sc.getCapabilities().getAdd()).isNullOrEmpty();
    assertThat(pod.getAutomountServiceAccountToken()).isFalse();
    assertThat(pod.getHostNetwork()).isNull();

    // With a read-only root, every path the server writes must be an emptyDir.
    Map<String, Volume> volumes =
        pod.getVolumes().stream()
            .collect(java.util.stream.Collectors.toMap(Volume::getName, v -> v));
    List<VolumeMount> writable =
        r.container().getVolumeMounts().stream()
            .filter(m -> !Boolean.TRUE.equals(m.getReadOnly()))
            .toList();
    assertThat(writable)
        .extracting(VolumeMount::getMountPath)
        .containsExactlyInAnyOrder("/tmp", "/var/cache/kvant", "/var/lib/kvant/staging");
    for (VolumeMount m : writable) {
      assertThat(volumes.get(m.getName()).getEmptyDir()).as(m.getMountPath()).isNotNull();
      assertThat(volumes.get(m.getName()).getEmptyDir().getSizeLimit()).isNotNull();
    }
    assertThat(r.container().getVolumeMounts())
        .filteredOn(m -> m.getMountPath().equals("/models"))
        .singleElement()
        .satisfies(m -> assertThat(m.getReadOnly()).isTrue());
  }

  @ParameterizedTest
  @MethodSource("valueSets")
  void gracePeriodCoversPreStopPlusDrain(List<String> files) {
    ChartFixture.Rendered r = ChartFixture.render(files, Map.of());
    int drain = Integer.parseInt(r.config().get("drain_timeout_seconds"));
    PodSpec pod = r.deployment().getSpec().getTemplate().getSpec();
    int preStop = r.container().getLifecycle().getPreStop().getSleep().getSeconds().intValue();
    assertThat(preStop).isPositive();
    long grace = pod.getTerminationGracePeriodSeconds();
    assertThat(grace).isGreaterThan(drain + preStop);
    // The server reports NOT_SERVING while it drains; liveness must not kill it meanwhile.
    Probe live = r.container().getLivenessProbe();
    assertThat(live.getPeriodSeconds() * live.getFailureThreshold()).isGreaterThan(drain + preStop);
    // Surge before drain: a rolling update never lowers the number of serving pods.
    assertThat(
            r.deployment()
                .getSpec()
                .getStrategy()
                .getRollingUpdate()
                .getMaxUnavailable()
                .getIntVal())
        .isZero();
  }

  @Test
  void gracePeriodIsComputedFromOneDrainValue() {
    ChartFixture.Rendered r =
        ChartFixture.render(
            List.of(),
            Map.of(
                "server.drainTimeoutSeconds", 300,
                "server.preStopSleepSeconds", 7,
                "server.terminationGraceMarginSeconds", 11));
    assertThat(r.config()).containsEntry("drain_timeout_seconds", "300");
    assertThat(r.deployment().getSpec().getTemplate().getSpec().getTerminationGracePeriodSeconds())
        .isEqualTo(318);
    Probe live = r.container().getLivenessProbe();
    assertThat(live.getPeriodSeconds() * live.getFailureThreshold()).isGreaterThan(307);
  }

  @Test
  void memoryIsSizedFromModelKvCacheAndJvm() {
    // 1024 model + 256 swap headroom (25 %) + 256 KV + 512 heap + 384 overhead
    var res = ChartFixture.render().container().getResources();
    assertThat(res.getRequests().get("memory")).isEqualTo(new Quantity("2432Mi"));
    assertThat(res.getLimits().get("memory")).isEqualTo(res.getRequests().get("memory"));
    assertThat(res.getLimits()).doesNotContainKeys("cpu", "nvidia.com/gpu");
    assertThat(ChartFixture.render().container().getEnv())
        .filteredOn(e -> e.getName().equals("JAVA_TOOL_OPTIONS"))
        .singleElement()
        .satisfies(e -> assertThat(e.getValue()).contains("-Xmx512m"));
    // off heap (packed weights, KV cache): all of the estimate but the heap, 2432 - 512
    assertThat(ChartFixture.render().container().getEnv())
        .filteredOn(e -> e.getName().equals("JAVA_TOOL_OPTIONS"))
        .singleElement()
        .satisfies(e -> assertThat(e.getValue()).contains("-XX:MaxDirectMemorySize=1920m"));

    // 8192 + 2048 + 4096 KV + 512 + 384
    var bigger =
        ChartFixture.render(List.of("gpu.yaml", "s3.yaml"), Map.of()).container().getResources();
    assertThat(bigger.getRequests().get("memory")).isEqualTo(new Quantity("15232Mi"));

    var overridden =
        ChartFixture.render(List.of(), Map.of("resources.memory.override", "24Gi"))
            .container()
            .getResources();
    assertThat(overridden.getRequests().get("memory")).isEqualTo(new Quantity("24Gi"));
  }

  @Test
  void gpuValuesRequestTheDeviceAndPinTheNodes() {
    ChartFixture.Rendered r = ChartFixture.render("gpu.yaml");
    var res = r.container().getResources();
    assertThat(res.getRequests().get("nvidia.com/gpu")).isEqualTo(new Quantity("1"));
    assertThat(res.getLimits().get("nvidia.com/gpu")).isEqualTo(new Quantity("1"));
    assertThat(res.getRequests().get("cpu")).isEqualTo(new Quantity("8"));
    PodSpec pod = r.deployment().getSpec().getTemplate().getSpec();
    assertThat(pod.getNodeSelector()).containsEntry("nvidia.com/gpu.present", "true");
    assertThat(pod.getTolerations())
        .anySatisfy(t -> assertThat(t.getKey()).isEqualTo("nvidia.com/gpu"));
    assertThat(r.config()).containsEntry("threads", "8");
  }

  @Test
  void hpaScalesOnCpuAndQueueSizeAndOwnsTheReplicaCount() {
    ChartFixture.Rendered r = ChartFixture.render("hpa.yaml");
    HorizontalPodAutoscaler hpa = r.one(HorizontalPodAutoscaler.class);
    assertThat(hpa.getApiVersion()).isEqualTo("autoscaling/v2");
    assertThat(hpa.getSpec().getScaleTargetRef().getName())
        .isEqualTo(r.deployment().getMetadata().getName());
    assertThat(hpa.getSpec().getMinReplicas()).isEqualTo(3);
    assertThat(hpa.getSpec().getMaxReplicas()).isEqualTo(12);
    List<MetricSpec> metrics = hpa.getSpec().getMetrics();
    assertThat(metrics).extracting(MetricSpec::getType).containsExactly("Resource", "Pods");
    assertThat(metrics.get(0).getResource().getName()).isEqualTo("cpu");
    assertThat(metrics.get(0).getResource().getTarget().getAverageUtilization()).isEqualTo(75);
    assertThat(metrics.get(1).getPods().getMetric().getName())
        .isEqualTo("kvant_scheduler_queue_size");
    assertThat(metrics.get(1).getPods().getTarget().getAverageValue()).isEqualTo(new Quantity("8"));
    // A fixed replicas field would fight the HPA on every upgrade.
    assertThat(r.deployment().getSpec().getReplicas()).isNull();
    assertThat(ChartFixture.render().deployment().getSpec().getReplicas()).isEqualTo(2);
  }

  @Test
  void s3BucketGetsCredentialsFromTheNamedSecretAndTheEndpointOverride() {
    ChartFixture.Rendered r = ChartFixture.render("s3.yaml");
    Map<String, EnvVar> env =
        r.container().getEnv().stream()
            .collect(java.util.stream.Collectors.toMap(EnvVar::getName, e -> e));
    assertThat(env.get("AWS_REGION").getValue()).isEqualTo("eu-west-1");
    assertThat(env.get("AWS_ENDPOINT_URL_S3").getValue())
        .isEqualTo("https://minio.storage.svc:9000");
    for (String name : List.of("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")) {
      var ref = env.get(name).getValueFrom().getSecretKeyRef();
      assertThat(ref.getName()).isEqualTo("kvant-s3");
      assertThat(ref.getKey()).isEqualTo(name);
    }
    // No bucket, no S3 environment: nothing to leak, nothing to misconfigure.
    assertThat(ChartFixture.render().container().getEnv())
        .extracting(EnvVar::getName)
        .containsExactly("JAVA_TOOL_OPTIONS");
  }

  @Test
  void tokenAndTlsFilesInTheConfigAreWhereTheSecretsAreMounted() {
    ChartFixture.Rendered r = ChartFixture.render("tls.yaml");
    Map<String, String> config = r.config();
    PodSpec pod = r.deployment().getSpec().getTemplate().getSpec();
    Map<String, String> secretByMount = new java.util.HashMap<>();
    for (VolumeMount m : r.container().getVolumeMounts()) {
      Volume v =
          pod.getVolumes().stream()
              .filter(x -> x.getName().equals(m.getName()))
              .findFirst()
              .orElseThrow();
      if (v.getSecret() != null) {
        assertThat(m.getReadOnly()).isTrue();
        secretByMount.put(m.getMountPath(), v.getSecret().getSecretName());
      }
    }
    assertThat(secretByMount)
        .containsEntry("/var/run/secrets/kvant/admin", "kvant-admin")
        .containsEntry("/var/run/secrets/kvant/generation", "kvant-clients")
        .containsEntry("/var/run/secrets/kvant/tls", "kvant-tls");
    assertThat(config)
        .containsEntry("security.admin_token_file", "/var/run/secrets/kvant/admin/admin")
        .containsEntry("security.generation_token_file", "/var/run/secrets/kvant/generation/token")
        .containsEntry("security.tls_cert", "/var/run/secrets/kvant/tls/tls.crt")
        .containsEntry("security.tls_key", "/var/run/secrets/kvant/tls/tls.key")
        .containsEntry("security.tls_client_ca", "/var/run/secrets/kvant/tls/ca.crt");
  }

  @Test
  void optionalObjectsRenderWhenEnabled() {
    ChartFixture.Rendered r = ChartFixture.render("tls.yaml");
    GenericKubernetesResource sm = r.one(GenericKubernetesResource.class);
    assertThat(sm.getKind()).isEqualTo("ServiceMonitor");
    assertThat(sm.getMetadata().getLabels()).containsEntry("release", "prometheus");
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> endpoints = (List<Map<String, Object>>) sm.get("spec", "endpoints");
    assertThat(endpoints)
        .singleElement()
        .satisfies(e -> assertThat(e).containsEntry("port", "metrics"));

    NetworkPolicy np = r.one(NetworkPolicy.class);
    assertThat(np.getSpec().getIngress()).hasSize(2);
    assertThat(np.getSpec().getIngress().getFirst().getPorts().getFirst().getPort().getStrVal())
        .isEqualTo("grpc");
    assertThat(
            np.getSpec()
                .getIngress()
                .getFirst()
                .getFrom()
                .getFirst()
                .getNamespaceSelector()
                .getMatchLabels())
        .containsEntry("kubernetes.io/metadata.name", "backend");

    assertThat(r.all(Service.class))
        .anySatisfy(
            s -> {
              assertThat(s.getMetadata().getName()).isEqualTo(ChartFixture.FULLNAME + "-headless");
              assertThat(s.getSpec().getClusterIP()).isEqualTo("None");
            });
  }

  @Test
  void changingTheConfigRollsThePods() {
    String before = podChecksum(ChartFixture.render());
    String after = podChecksum(ChartFixture.render(List.of(), Map.of("scheduler.maxQueue", 100)));
    assertThat(before).isNotBlank().isNotEqualTo(after);
  }

  private static String podChecksum(ChartFixture.Rendered r) {
    return r.deployment()
        .getSpec()
        .getTemplate()
        .getMetadata()
        .getAnnotations()
        .get("checksum/config");
  }
}
