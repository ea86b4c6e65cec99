package io.kvant.server.cli;

import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.MetadataUtils;
import io.kvant.api.v1.GetModelStatusRequest;
import io.kvant.api.v1.ModelAdminGrpc;
import io.kvant.api.v1.ModelStatus;
import io.kvant.api.v1.VersionStatus;
import io.kvant.engine.model.Model;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.quant.artifact.Manifest;
import io.kvant.quant.artifact.ModelOpener;
import io.kvant.reload.Publisher;
import io.kvant.reload.Rejection;
import io.kvant.reload.ServingView;
import io.kvant.reload.StagedVersion;
import io.kvant.reload.VersionCheck;
import io.kvant.reload.bucket.Bucket;
import io.kvant.reload.bucket.Buckets;
import io.kvant.reload.bucket.S3Settings;
import io.kvant.server.cli.Flags.UsageException;
import io.kvant.server.config.ConfigLoader;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * {@code kvant agent}: tools for platform teams around an artifact bucket.
 *
 * <ul>
 *   <li>{@code publish --model DIR|FILE --bucket URI}: digests a version folder (a {@code kvant
 *       quantize} folder as it is, its pre-quantized tensors included; a model file becomes a full
 *       version of its full-precision tensors), runs the server's verification on it against {@code
 *       --base}, and only then uploads it, the manifest last;
 *   <li>{@code verify URI}: downloads, verifies, recalibrates and gates a bucket version against a
 *       model without serving it;
 *   <li>{@code status --target HOST:PORT --token-file F}: what a running server holds.
 * </ul>
 */
final class AgentCommand {
  static final String USAGE =
      """
      usage: kvant agent publish --model DIR|FILE --bucket URI [--name MODEL] [--parent VERSION]
                                 [--channel NAME] [--version ID] [--recipe none|w8|w4g128|...]
                                 [--publisher WHO] [--base PATH]
               --model: a version folder (*.safetensors, encodings.json, calibration.jsonl), a
               `kvant quantize` folder (uploaded as it is: servers serve its codes), or a model
               file (published as its full-precision tensors)
               --base: the model servers run (default: the bundled model); the version is
               verified against it exactly as a server's agent would, and refused with its reason
             kvant agent verify URI/<model>/versions/<version> [--model PATH]
             kvant agent status --target HOST:PORT --token-file F [--model NAME]
        S3 flags (publish, verify): --s3-endpoint URL --s3-region R (credentials: the AWS SDK's
        default chain, e.g. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)
      """;

  private final PrintStream out;
  private final PrintStream err;
  private final Map<String, String> env;

  AgentCommand(PrintStream out, PrintStream err, Map<String, String> env) {
    this.out = out;
    this.err = err;
    this.env = env;
  }

  int run(List<String> args) {
    if (args.isEmpty() || args.contains("--help")) {
      out.print(USAGE);
      return args.isEmpty() ? 2 : 0;
    }
    try {
      return switch (args.get(0)) {
        case "publish" -> publish(args.subList(1, args.size()));
        case "verify" -> verify(args.subList(1, args.size()));
        case "status" -> status(args.subList(1, args.size()));
        default -> throw new UsageException("unknown agent command '" + args.get(0) + "'");
      };
    } catch (UsageException | IllegalArgumentException e) {
      err.println("kvant agent: " + e.getMessage());
      err.print(USAGE);
      return 2;
    } catch (IOException e) {
      err.println("kvant agent: " + e.getMessage());
      return 1;
    } catch (OutOfMemoryError e) {
      // one large allocation failed (a matrix in full precision, or quantized); nothing was
      // published: the manifest, uploaded last, was not
      err.println(
          "kvant agent "
              + args.get(0)
              + ": ran out of Java heap (at most "
              + (Runtime.getRuntime().maxMemory() >> 20)
              + " MiB): a version's tensors are checked and re-quantized on the heap; give the JVM"
              + " more (KVANT_HEAP=8g with ./kvant, -Xmx otherwise)");
      return 1;
    }
  }

  private static S3Settings s3(Flags f) {
    return new S3Settings(
        f.string("s3-endpoint").map(URI::create),
        f.string("s3-region").orElse("us-east-1"),
        true,
        Optional.empty(),
        Optional.empty());
  }

  private int publish(List<String> args) throws UsageException, IOException {
    Flags f =
        Flags.parse(
            args,
            Set.of(
                "model",
                "bucket",
                "name",
                "parent",
                "channel",
                "version",
                "recipe",
                "publisher",
                "base",
                "s3-endpoint",
                "s3-region"),
            Set.of());
    Path model =
        Path.of(f.string("model").orElseThrow(() -> new UsageException("--model is required")));
    String uri = f.string("bucket").orElseThrow(() -> new UsageException("--bucket is required"));
    String name =
        f.string("name").orElse(model.getFileName().toString().replaceFirst("\\.[^.]*$", ""));
    Path base = f.string("base").map(Path::of).orElseGet(() -> ConfigLoader.bundledModel(env));
    String recipe = f.string("recipe").orElse("none");
    if (!Files.isRegularFile(model) && !Files.isDirectory(model)) {
      throw new UsageException("--model: " + model + " is neither a folder nor a model file");
    }
    Path tmp = null;
    Path work = null;
    try {
      Path dir = model;
      if (Files.isRegularFile(model)) {
        // A model file: publish all of its tensors as one safetensors file (a full version). No
        // kv_calibration.safetensors: a running server's KV pool keeps the statistics it started
        // with, so a pass here would cost every publish for a file nothing reads until a restart
        // (docs/DECISIONS.md, "KV statistics in the version folder").
        tmp = Files.createTempDirectory("kvant-publish");
        try (Model m = ModelOpener.load(model, Optional.empty())) {
          Publisher.writeTensors(tmp.resolve("model.safetensors"), Publisher.tensorsOf(m));
        }
        dir = tmp;
      }
      work = Files.createTempDirectory("kvant-publish-work");
      return publish(f, uri, name, base, recipe, dir, work);
    } finally {
      // the temporary folders go whatever happened (a failed write left them behind before)
      if (work != null) {
        delete(work);
      }
      if (tmp != null) {
        delete(tmp);
      }
    }
  }

  private int publish(
      Flags f, String uri, String name, Path base, String recipe, Path dir, Path work)
      throws IOException {
    try (Bucket bucket = Buckets.open(uri, s3(f));
        Model served = ModelOpener.load(base, Optional.empty());
        ComputePool pool = new ComputePool(Runtime.getRuntime().availableProcessors())) {
      VersionCheck check = new VersionCheck(view(served), pool, work, Clock.systemUTC());
      Publisher pub = new Publisher(bucket, Clock.systemUTC(), check);
      String version = f.string("version").orElseGet(pub::timestampId);
      Publisher.Published p;
      try {
        p =
            pub.publish(
                name,
                version,
                f.string("parent"),
                recipe,
                f.string("publisher").orElse(env.getOrDefault("USER", "unknown")),
                dir,
                f.string("channel"));
      } catch (Rejection e) {
        err.printf(
            "kvant agent publish: REFUSED %s (%s): %s; a server serving %s would refuse it the"
                + " same way; nothing was uploaded%n",
            version, e.reason(), e.getMessage(), base.getFileName());
        return 1;
      }
      Manifest m = p.manifest();
      StagedVersion v = p.verified().orElseThrow();
      out.printf(
          "published %s/%s/versions/%s: %d files, %d tensors, %d changed from %s, %d"
              + " re-quantized (recipe %s), gate %s%s%s%n",
          bucket.uri(),
          m.model(),
          m.version(),
          m.files().size(),
          m.tensors().size(),
          v.changed(),
          m.parent().orElse(base.getFileName().toString()),
          v.recalibrated(),
          v.recipe(),
          v.figures(),
          m.parent().map(pv -> ", delta of " + pv).orElse(""),
          f.string("channel").map(c -> ", channel " + c).orElse(""));
      return 0;
    }
  }

  private static ServingView view(Model m) {
    return new ServingView("local", "none", m.config(), m.tokenizer(), m.weights());
  }

  private static void delete(Path dir) throws IOException {
    try (var s = Files.walk(dir)) {
      s.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
  }

  private int verify(List<String> args) throws UsageException, IOException {
    if (args.isEmpty() || args.get(0).startsWith("--")) {
      throw new UsageException("verify needs a version URI");
    }
    String uri = args.get(0).replaceAll("/+$", "");
    Flags f =
        Flags.parse(
            args.subList(1, args.size()), Set.of("model", "s3-endpoint", "s3-region"), Set.of());
    int at = uri.lastIndexOf("/versions/");
    int modelStart = at < 0 ? -1 : uri.lastIndexOf('/', at - 1);
    if (at < 0 || modelStart < 0) {
      throw new UsageException("URI must look like <bucket>/<model>/versions/<version>");
    }
    String version = uri.substring(at + "/versions/".length());
    String modelName = uri.substring(modelStart + 1, at);
    String bucketUri = uri.substring(0, modelStart);
    Path modelPath =
        f.string("model").map(Path::of).orElseGet(() -> ConfigLoader.bundledModel(env));
    Path work = Files.createTempDirectory("kvant-verify");
    try (Model m = ModelOpener.load(modelPath, Optional.empty());
        ComputePool pool = new ComputePool(Runtime.getRuntime().availableProcessors());
        Bucket bucket = Buckets.open(bucketUri, s3(f))) {
      try {
        StagedVersion v =
            new VersionCheck(view(m), pool, work, Clock.systemUTC())
                .verify(bucket, modelName, version);
        out.printf(
            "OK %s: recipe %s, %d tensors changed from %s, %d re-quantized, gate %s%n",
            version,
            v.recipe(),
            v.changed(),
            v.parent().isEmpty() ? modelPath.getFileName() : v.parent(),
            v.recalibrated(),
            v.figures());
        return 0;
      } catch (Rejection e) {
        out.printf(
            "REJECTED %s (%s): %s [%s/%s]%n",
            version, e.reason(), e.getMessage(), bucket.uri(), modelName);
        return 1;
      }
    } finally {
      delete(work);
    }
  }

  private int status(List<String> args) throws UsageException, IOException {
    Flags f = Flags.parse(args, Set.of("target", "token-file", "model"), Set.of());
    String target =
        f.string("target").orElseThrow(() -> new UsageException("--target HOST:PORT is required"));
    int colon = target.lastIndexOf(':');
    if (colon <= 0) {
      throw new UsageException("--target must be HOST:PORT");
    }
    String host = target.substring(0, colon);
    int port;
    try {
      port = Integer.parseInt(target.substring(colon + 1));
    } catch (NumberFormatException e) {
      throw new UsageException("--target: bad port in '" + target + "'");
    }
    Metadata md = new Metadata();
    if (f.string("token-file").isPresent()) {
      String token =
          Files.readString(Path.of(f.string("token-file").get()), StandardCharsets.UTF_8).strip();
      md.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + token);
    }
    ManagedChannel ch = NettyChannelBuilder.forAddress(host, port).usePlaintext().build();
    try {
      ModelStatus s =
          ModelAdminGrpc.newBlockingStub(ch)
              .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(md))
              .withDeadlineAfter(30, TimeUnit.SECONDS)
              .getModelStatus(
                  GetModelStatusRequest.newBuilder()
                      .setModel(f.string("model").orElse(""))
                      .build());
      out.printf("model %s serving %s%n", s.getModel(), s.getServingVersion());
      out.printf(
          "%-28s %-9s %7s %12s %12s %-8s %s%n",
          "VERSION", "STATE", "PINNED", "UNIQUE_B", "SHARED_B", "RECIPE", "PARENT");
      for (VersionStatus v : s.getVersionsList()) {
        out.printf(
            "%-28s %-9s %7d %12d %12d %-8s %s%n",
            v.getVersion(),
            v.getState().name().replace("VERSION_STATE_", ""),
            v.getPinnedRequests(),
            v.getUniqueBytes(),
            v.getSharedBytes(),
            v.getRecipe(),
            v.getParent());
      }
      out.printf(
          "kv cache %d/%d blocks free, %d queued, %d running%n",
          s.getKvCache().getFreeBlocks(),
          s.getKvCache().getTotalBlocks(),
          s.getQueuedRequests(),
          s.getRunningRequests());
      return 0;
    } catch (StatusRuntimeException e) {
      err.println(
          "kvant agent status: " + e.getStatus().getCode() + ": " + e.getStatus().getDescription());
      return 1;
    } finally {
      ch.shutdownNow();
    }
  }
}
