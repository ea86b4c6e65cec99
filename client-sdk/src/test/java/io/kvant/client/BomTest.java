package io.kvant.client;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;

/**
 * The BOM ({@code bom/pom.xml}) has no parent, so it repeats the versions it pins: they must be the
 * ones the SDK is built and tested with (the root pom's), and it must manage the SDK and the API
 * module at this build's version.
 */
class BomTest {
  private static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

  @Test
  void bomPinsTheVersionsTheSdkIsBuiltWith() throws Exception {
    Document bom = parse(ROOT.resolve("bom/pom.xml"));
    Document root = parse(ROOT.resolve("pom.xml"));
    for (String property : List.of("grpc.version", "protobuf.version")) {
      assertThat(property(bom, property))
          .as("bom/pom.xml property %s", property)
          .isNotBlank()
          .isEqualTo(property(root, property));
    }
    String version = child(root.getDocumentElement(), "version");
    assertThat(child(bom.getDocumentElement(), "version")).isEqualTo(version);
    assertThat(child(bom.getDocumentElement(), "parent")).as("the BOM has no parent").isNull();
    assertThat(managed(bom))
        .contains(
            "io.kvant:kvant-client-sdk:${project.version}",
            "io.kvant:kvant-proto:${project.version}",
            "io.grpc:grpc-bom:${grpc.version}",
            "com.google.protobuf:protobuf-java:${protobuf.version}")
        .noneMatch(d -> d.startsWith("io.kvant:kvant-server"));
  }

  private static Document parse(Path pom) throws Exception {
    DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
    f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
    return f.newDocumentBuilder().parse(pom.toFile());
  }

  private static String property(Document pom, String name) {
    NodeList props = pom.getDocumentElement().getElementsByTagName("properties");
    return props.getLength() == 0 ? null : child((Element) props.item(0), name);
  }

  /** {@code groupId:artifactId:version} of each dependency under dependencyManagement. */
  private static List<String> managed(Document pom) {
    List<String> out = new ArrayList<>();
    Element dm =
        (Element) pom.getDocumentElement().getElementsByTagName("dependencyManagement").item(0);
    NodeList deps = dm.getElementsByTagName("dependency");
    for (int i = 0; i < deps.getLength(); i++) {
      Element d = (Element) deps.item(i);
      out.add(child(d, "groupId") + ":" + child(d, "artifactId") + ":" + child(d, "version"));
    }
    return out;
  }

  /** Text of the direct child element {@code name}, or null. */
  private static String child(Element e, String name) {
    for (Node n = e.getFirstChild(); n != null; n = n.getNextSibling()) {
      if (n instanceof Element && ((Element) n).getTagName().equals(name)) {
        return n.getTextContent().trim();
      }
    }
    return null;
  }
}
