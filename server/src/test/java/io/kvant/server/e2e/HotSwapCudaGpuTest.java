package io.kvant.server.e2e;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.kvant.cuda.CudaBackend;
import io.kvant.cuda.device.CudaOptions;
import io.kvant.cuda.driver.CudaUnavailableException;
import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelLoader;
import io.kvant.reload.bucket.FileBucket;
import io.kvant.server.config.AgentConfig;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link HotSwapLoadTest}'s three swaps (PAUSE, DRAIN of a one-tensor delta, IMMEDIATE) under 16
 * streams, with the server on {@code --device cuda} (needs a GPU; skipped elsewhere). The bucket is
 * a folder: the GPU host has no S3 server to start, and the agent reads both through the same
 * {@code Bucket} interface. Responses are held to the CPU engine's greedy output (first tokens
 * exactly, 98% in full) and the delta swap must upload exactly its one tensor to the device.
 */
@Tag("gpu")
class HotSwapCudaGpuTest {
  @TempDir Path tmp;

  @Test
  @Timeout(300)
  void threeSwapsUnderLoadOnTheGpu() throws Exception {
    try (CudaBackend probe = CudaBackend.open(CudaOptions.fromEnvironment(System.getenv()))) {
      probe.describe();
    } catch (CudaUnavailableException e) {
      assumeTrue(false, "GPU test skipped: " + e.getMessage());
    }
    HotSwapLoadTest scenario = new HotSwapLoadTest();
    scenario.tmp = tmp;
    Path folder = tmp.resolve("bucket");
    try (FileBucket bucket = new FileBucket(folder);
        Model source = ModelLoader.load(TestServer.stories(), Optional.empty())) {
      scenario.publishVersions(bucket, source);
      AgentConfig agent = scenario.agentConfig(AgentConfig.defaults().s3());
      try (TestServer server =
          TestServer.builder()
              .device("cuda")
              .kv("f32")
              .bucket(folder.toUri().toString(), agent)
              .start()) {
        scenario.run(server, source, HotSwapLoadTest.Exactness.PREFIX);
      }
    }
  }
}
