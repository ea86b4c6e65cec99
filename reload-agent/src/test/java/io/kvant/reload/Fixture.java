package io.kvant.reload;

import io.kvant.engine.model.Model;
import io.kvant.engine.model.ModelLoader;
import io.kvant.engine.model.Weight;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.Tensor;
import io.kvant.reload.bucket.Bucket;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;

/** stories260K, an in-memory server, a settable clock and an agent over a bucket. */
final class Fixture implements AutoCloseable {
  record Event(Step step, String version, String message, Map<String, String> attrs) {}

  static final String MODEL = "stories";

  final Model model;
  final ComputePool pool = new ComputePool(1);
  final MutableClock clock = new MutableClock(Instant.parse("2026-11-24T10:00:00Z"));
  final MemoryTarget target;
  final List<Event> events = java.util.Collections.synchronizedList(new ArrayList<>());
  final Path work;

  Fixture(Path work) throws IOException {
    this.work = work;
    this.model = ModelLoader.load(stories(), Optional.empty());
    this.target = new MemoryTarget(model);
  }

  static Path stories() {
    for (Path d = Path.of("").toAbsolutePath(); d != null; d = d.getParent()) {
      for (Path c : new Path[] {d.resolve("shared/models"), d.resolve("../shared/models")}) {
        if (Files.isDirectory(c)) {
          return c.resolve("stories260K/stories260K.gguf").normalize();
        }
      }
    }
    throw new IllegalStateException("shared/models not found");
  }

  AgentSettings settings() {
    return AgentSettings.defaults(MODEL, work.resolve("staging"))
        .withQbomDir(Optional.of(work.resolve("qbom")))
        .withWatchWindow(Duration.ofSeconds(60));
  }

  ReloadAgent agent(Bucket bucket, AgentSettings s) throws IOException {
    ReloadAgent a =
        new ReloadAgent(
            s,
            bucket,
            target,
            (step, v, msg, attrs) -> events.add(new Event(step, v, msg, Map.copyOf(attrs))),
            clock,
            PollScheduler.manual(),
            pool,
            new RecipeRequantizer());
    a.start();
    return a;
  }

  /** The model's own tensors by name. */
  Map<String, Weight> tensors() {
    return new LinkedHashMap<>(Publisher.tensorsOf(model));
  }

  /** The model's matrix called {@code name}. */
  Tensor matrix(String name) {
    return tensor(tensors().get(name));
  }

  /** The model's vector called {@code name} (a copy). */
  float[] vector(String name) {
    return switch (tensors().get(name)) {
      case Weight.Vector v -> v.values().clone();
      case Weight.Matrix m -> throw new IllegalArgumentException(name + " is a matrix");
    };
  }

  /** The tensor of a matrix weight. */
  static Tensor tensor(Weight w) {
    return switch (w) {
      case Weight.Matrix m -> m.tensor();
      case Weight.Vector v -> throw new IllegalArgumentException("a vector, not a matrix");
    };
  }

  /** An F32 matrix weight holding {@code v} (row-major). */
  static Weight.Matrix matrix(float[] v, int rows, int cols) {
    return new Weight.Matrix(TensorData.f32(v, rows, cols));
  }

  /** A copy of {@code t} with every value scaled. */
  static Weight.Matrix scaled(Tensor t, float by) {
    float[] v = TensorData.values(t);
    for (int i = 0; i < v.length; i++) {
      v[i] *= by;
    }
    return matrix(v, t.rows(), t.cols());
  }

  /** Random gaussian weights of {@code t}'s shape. */
  static Weight.Matrix random(Tensor t, long seed, float std) {
    Random r = new Random(seed);
    float[] v = new float[t.rows() * t.cols()];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) r.nextGaussian() * std;
    }
    return matrix(v, t.rows(), t.cols());
  }

  /** Writes {@code values} into a fresh folder and publishes it. */
  void publish(
      Bucket bucket,
      String version,
      Optional<String> parent,
      String recipe,
      Map<String, Weight> values)
      throws IOException, Rejection {
    publish(bucket, version, parent, recipe, values, Map.of());
  }

  /** Same, with extra files (encodings, calibration) beside the tensors. */
  void publish(
      Bucket bucket,
      String version,
      Optional<String> parent,
      String recipe,
      Map<String, Weight> values,
      Map<String, String> extra)
      throws IOException, Rejection {
    Path dir = Files.createDirectories(work.resolve("src-" + version));
    Publisher.writeTensors(dir.resolve("model.safetensors"), values);
    for (var e : extra.entrySet()) {
      Files.writeString(dir.resolve(e.getKey()), e.getValue());
    }
    // Unverified: the agent tests plant versions the agent must refuse.
    Publisher.unverified(bucket, clock)
        .publish(MODEL, version, parent, recipe, "test", dir, Optional.empty());
    clock.advance(Duration.ofSeconds(1));
  }

  List<Event> of(Step step) {
    synchronized (events) {
      return events.stream().filter(e -> e.step() == step).toList();
    }
  }

  @Override
  public void close() throws Exception {
    pool.close();
    model.close();
  }

  /** A clock tests move by hand. */
  static final class MutableClock extends Clock {
    private volatile Instant now;

    MutableClock(Instant start) {
      now = start;
    }

    void advance(Duration d) {
      now = now.plus(d);
    }

    @Override
    public ZoneId getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(ZoneId zone) {
      return this;
    }

    @Override
    public Instant instant() {
      return now;
    }
  }

  /** The server, in memory: a serving view, a standby, and the swaps it was asked for. */
  static final class MemoryTarget implements SwapTarget {
    private final Model model;
    volatile ServingView serving;
    volatile ServingView standby;
    final List<String> swaps = java.util.Collections.synchronizedList(new ArrayList<>());
    volatile int drops;

    MemoryTarget(Model m) {
      this.model = m;
      this.serving = new ServingView("base", "none", m.config(), m.tokenizer(), m.weights());
    }

    @Override
    public ServingView serving() {
      return serving;
    }

    @Override
    public synchronized void swap(StagedVersion v, SwapMode mode, long startMillis) {
      standby = serving;
      serving = new ServingView(v.id(), v.recipe(), model.config(), model.tokenizer(), v.weights());
      swaps.add(mode + ":" + v.id());
    }

    @Override
    public synchronized void rollback() throws SwapRefusedException {
      if (standby == null) {
        throw new SwapRefusedException("no standby");
      }
      serving = standby;
      standby = null;
    }

    @Override
    public synchronized void dropStandby() {
      standby = null;
      drops++;
    }
  }
}
