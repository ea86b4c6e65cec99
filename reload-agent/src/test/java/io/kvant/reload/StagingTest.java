package io.kvant.reload;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.kvant.reload.bucket.FileBucket;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 17, items 1 and 2: the staging folder is kvant's own and a missing bucket fails at start;
 * the agent never deletes or creates what is not its own.
 */
class StagingTest {
  @TempDir Path tmp;

  private ReloadAgent agent(Fixture fx, FileBucket bucket, Path staging) {
    return new ReloadAgent(
        AgentSettings.defaults(Fixture.MODEL, staging),
        bucket,
        fx.target,
        (s, v, m, a) -> {},
        fx.clock,
        PollScheduler.manual(),
        fx.pool,
        new RecipeRequantizer());
  }

  @Test
  void aForeignFolderIsRefusedAndLeftAsItWas() throws Exception {
    Path staging = Files.createDirectories(tmp.resolve("x/sub"));
    Files.writeString(tmp.resolve("x/notes.txt"), "hi");
    try (Fixture fx = new Fixture(tmp)) {
      ReloadAgent a =
          agent(fx, new FileBucket(Files.createDirectories(tmp.resolve("b"))), staging.getParent());
      assertThatThrownBy(a::start)
          .isInstanceOf(IOException.class)
          .hasMessageContaining(tmp.resolve("x").toString())
          .hasMessageContaining("not a kvant staging area");
      a.close();
    }
    assertThat(tmp.resolve("x/notes.txt")).hasContent("hi");
    assertThat(tmp.resolve("x/sub")).isDirectory();
    assertThat(tmp.resolve("x/" + Staging.MARKER)).doesNotExist();
  }

  @Test
  void anOwnFolderLosesOnlyItsDownloads() throws Exception {
    Path staging = tmp.resolve("staging");
    try (Fixture fx = new Fixture(tmp)) {
      FileBucket bucket = new FileBucket(Files.createDirectories(tmp.resolve("b")));
      ReloadAgent first = agent(fx, bucket, staging);
      first.start();
      first.close();
      assertThat(staging.resolve(Staging.MARKER)).exists();
      // What a killed download leaves, and a file someone put there by hand.
      Files.createDirectories(staging.resolve("v1.partial"));
      Files.writeString(staging.resolve("v1.partial/model.safetensors"), "half");
      Files.writeString(staging.resolve("notes.txt"), "mine");
      ReloadAgent second = agent(fx, bucket, staging);
      second.start();
      second.close();
    }
    assertThat(staging.resolve("v1.partial")).doesNotExist();
    assertThat(staging.resolve("notes.txt")).hasContent("mine");
  }

  @Test
  void anEmptyExistingFolderIsTaken() throws Exception {
    Path staging = Files.createDirectories(tmp.resolve("empty"));
    try (Fixture fx = new Fixture(tmp)) {
      ReloadAgent a = agent(fx, new FileBucket(Files.createDirectories(tmp.resolve("b"))), staging);
      a.start();
      a.close();
    }
    assertThat(staging.resolve(Staging.MARKER)).exists();
  }

  @Test
  void aMissingBucketFailsAtStartAndIsNotCreated() throws Exception {
    Path missing = tmp.resolve("nonexistent/bucket");
    try (Fixture fx = new Fixture(tmp)) {
      ReloadAgent a = agent(fx, new FileBucket(missing), tmp.resolve("staging"));
      assertThatThrownBy(a::start)
          .isInstanceOf(IOException.class)
          .hasMessageContaining(missing.toUri().toString().replaceAll("/$", ""))
          .hasMessageContaining("no such folder");
      a.close();
    }
    assertThat(tmp.resolve("nonexistent")).doesNotExist();
  }
}
