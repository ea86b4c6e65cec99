package io.kvant.charts;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.marcnuri.helm.Helm;
import com.marcnuri.helm.TemplateCommand;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Renders the chart in {@code kvant/} through Helm itself (helm-java: Helm v3 linked as a native
 * library, so no {@code helm} binary is needed) and parses what comes out as Kubernetes objects,
 * the way the API server would receive them.
 */
final class ChartFixture {
  static final Path CHART = Path.of("kvant");
  static final String RELEASE = "kv";
  static final String FULLNAME = "kv-kvant";

  private static final KubernetesSerialization K8S = new KubernetesSerialization();
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

  private ChartFixture() {}

  /**
   * A {@code helm template} of the chart, with values files from test resources and --set pairs.
   */
  static Rendered render(List<String> valuesFiles, Map<String, Object> sets) {
    TemplateCommand cmd =
        new Helm(CHART)
            .template()
            .withName(RELEASE)
            .withNamespace("serving")
            .withKubeVersion("1.31.0");
    for (String f : valuesFiles) {
      cmd = cmd.withValuesFile(Path.of("src/test/resources/values", f));
    }
    for (Map.Entry<String, Object> e : sets.entrySet()) {
      cmd = cmd.set(e.getKey(), e.getValue());
    }
    return new Rendered(parse(cmd.call()));
  }

  static Rendered render(String... valuesFiles) {
    return render(List.of(valuesFiles), Map.of());
  }

  /** Splits Helm's multi-document output and parses each document as a Kubernetes object. */
  static List<HasMetadata> parse(String manifests) {
    List<HasMetadata> out = new ArrayList<>();
    for (String doc : manifests.split("(?m)^---\\s*$")) {
      if (doc.lines().allMatch(l -> l.isBlank() || l.startsWith("#"))) {
        continue;
      }
      // Unknown kinds (ServiceMonitor) come back as GenericKubernetesResource.
      out.add(K8S.unmarshal(doc, HasMetadata.class));
    }
    return out;
  }

  /**
   * The YAML keys the server accepts, read from ConfigLoader's flag table in the server's source
   * (this module does not depend on the server: the chart must not need the engine compiled).
   */
  static List<String> serverConfigKeys() {
    Path loader = Path.of("../server/src/main/java/io/kvant/server/config/ConfigLoader.java");
    String src;
    try {
      src = Files.readString(loader);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    Matcher m = Pattern.compile("Map\\.entry\\(\"[a-z-]+\", \"([a-z_.]+)\"\\)").matcher(src);
    List<String> keys = new ArrayList<>();
    while (m.find()) {
      keys.add(m.group(1));
    }
    return keys;
  }

  /** config.yaml flattened to dotted keys, as ConfigLoader flattens it. */
  static Map<String, String> flatten(String yaml) {
    try {
      Map<String, String> flat = new LinkedHashMap<>();
      flatten("", YAML.readTree(yaml), flat);
      return flat;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void flatten(String prefix, JsonNode node, Map<String, String> out) {
    Iterator<Map.Entry<String, JsonNode>> it = node.properties().iterator();
    while (it.hasNext()) {
      Map.Entry<String, JsonNode> e = it.next();
      if (e.getValue().isObject()) {
        flatten(prefix + e.getKey() + ".", e.getValue(), out);
      } else {
        out.put(prefix + e.getKey(), e.getValue().asText());
      }
    }
  }

  /** The objects of one rendering. */
  record Rendered(List<HasMetadata> objects) {
    <T extends HasMetadata> T one(Class<T> type) {
      List<T> found = all(type);
      if (found.size() != 1) {
        throw new AssertionError("expected one " + type.getSimpleName() + ", got " + found.size());
      }
      return found.getFirst();
    }

    <T extends HasMetadata> List<T> all(Class<T> type) {
      return objects.stream().filter(type::isInstance).map(type::cast).toList();
    }

    List<String> kinds() {
      return objects.stream().map(HasMetadata::getKind).sorted().toList();
    }

    Deployment deployment() {
      return one(Deployment.class);
    }

    /** The kvant container: the pod's only container, or its native sidecar in sidecar mode. */
    Container container() {
      var pod = deployment().getSpec().getTemplate().getSpec();
      return java.util.stream.Stream.concat(
              pod.getInitContainers().stream(), pod.getContainers().stream())
          .filter(c -> c.getName().equals("kvant"))
          .findFirst()
          .orElseThrow(() -> new AssertionError("no container named kvant"));
    }

    /** The server's config.yaml from the ConfigMap, flattened to the server's dotted keys. */
    Map<String, String> config() {
      ConfigMap cm = one(ConfigMap.class);
      return flatten(cm.getData().get("config.yaml"));
    }
  }
}
