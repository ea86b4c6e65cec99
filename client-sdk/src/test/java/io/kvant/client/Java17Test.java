package io.kvant.client;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.api.v1.GenerateRequest;
import java.io.DataInputStream;
import java.io.InputStream;
import org.junit.jupiter.api.Test;

/**
 * The SDK and the API module are Java 17 class files, and these tests run on a Java 17 runtime
 * (surefire's {@code jvm}, {@code kvant.java17} in the root pom), not on the JDK 25 that builds the
 * server: if either setting is lost, this fails instead of the SDK silently needing a newer Java.
 */
class Java17Test {
  private static final int JAVA_17_CLASS_FILE = 61;

  @Test
  void sdkAndApiClassesAreJava17Bytecode() throws Exception {
    assertThat(classFileMajor(KvantClient.class)).isEqualTo(JAVA_17_CLASS_FILE);
    assertThat(classFileMajor(GenerateRequest.class)).isEqualTo(JAVA_17_CLASS_FILE);
    assertThat(classFileMajor(Java17Test.class)).isEqualTo(JAVA_17_CLASS_FILE);
  }

  @Test
  void testsRunOnAJava17Runtime() {
    assertThat(Runtime.version().feature())
        .as("java.home=" + System.getProperty("java.home"))
        .isEqualTo(17);
  }

  private static int classFileMajor(Class<?> c) throws Exception {
    String resource = "/" + c.getName().replace('.', '/') + ".class";
    try (InputStream in = c.getResourceAsStream(resource)) {
      assertThat(in).as(resource).isNotNull();
      DataInputStream data = new DataInputStream(in);
      assertThat(data.readInt()).isEqualTo(0xCAFEBABE);
      data.readUnsignedShort(); // minor
      return data.readUnsignedShort();
    }
  }
}
