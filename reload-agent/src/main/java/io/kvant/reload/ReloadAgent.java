package io.kvant.reload;

import io.kvant.engine.model.Weight;
import io.kvant.engine.model.WeightLayout;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.quant.artifact.Digests;
import io.kvant.quant.artifact.Manifest;
import io.kvant.quant.artifact.ManifestCodec;
import io.kvant.quant.artifact.ManifestException;
import io.kvant.reload.bucket.Bucket;
import io.kvant.reload.bucket.FileBucket;
import io.kvant.reload.bucket.ObjectInfo;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The reload agent: watches a bucket for new versions of one model and hot-swaps them into the
 * running server.
 *
 * <p>Design note. The pipeline for a version is detect → download and verify → diff against the
 * base (the parent of a delta, else the serving version) → recalibrate only what changed → quality
 * gate → stage → swap → watch → keep or roll back ({@link VersionBuilder} does the middle steps).
 * Every step is reported through {@link AgentEvents}; a failure at any step is a {@link Rejection}:
 * reported with its reason, remembered by the manifest's ETag (so a broken version is not retried
 * until it is republished), and the serving version is never touched.
 *
 * <p>State machine (one pipeline at a time, under {@link #pipeline}):
 *
 * <pre>
 *   IDLE ──poll finds a newer version / Swap RPC──▶ BUILDING ──rejected──▶ IDLE
 *                                                      │ staged
 *                                                      ▼
 *   IDLE ◀──KEPT (window passed; standby dropped)── WATCHING ──error rate tripped──▶ ROLLED_BACK ─▶ IDLE
 *                                                      │ serving changed outside (Rollback RPC)
 *                                                      └──────────────────────────────────────────▶ IDLE
 * </pre>
 *
 * A version that was rolled back (by the agent or by an operator) is not swapped in again by
 * polling; an explicit Swap RPC may. Polls come from an injected {@link PollScheduler} (and, for a
 * folder, a WatchService nudge); time from the injected {@link Clock}. Downloads in the staging
 * area are removed at {@link #start}, so a download cut short by a kill is discarded, and the agent
 * resumes from whatever the server serves. A bucket that does not exist, or a staging folder that
 * is not kvant's own, fails {@link #start}.
 */
public final class ReloadAgent implements AutoCloseable {
  private static final Logger LOG = System.getLogger("io.kvant.reload.Agent");
  private static final int MAX_PARENT_DEPTH = 8;
  private static final int MAX_LISTED = 100_000;

  private final AgentSettings settings;
  private final Bucket bucket;
  private final SwapTarget target;
  private final AgentEvents events;
  private final Clock clock;
  private final PollScheduler scheduler;
  private final Requantizer requantizer;
  private final Staging staging;
  private final QbomLog qbom;
  private final VersionBuilder builder;
  private final ComputePool pool;
  private final ReentrantLock pipeline = new ReentrantLock();
  private final Map<String, Held> held = new ConcurrentHashMap<>();
  private final Map<String, String> refused = new ConcurrentHashMap<>();
  private final Set<String> suppressed = ConcurrentHashMap.newKeySet();
  private final Map<String, CachedManifest> manifests = new HashMap<>();
  private final Map<String, String> skipped = new ConcurrentHashMap<>();
  private volatile Watch watch;
  private volatile String lastRejection = "";
  private volatile boolean prepared;
  private FolderWatch folderWatch;

  private record CachedManifest(String etag, Manifest manifest, String sha, String error) {}

  public ReloadAgent(
      AgentSettings settings,
      Bucket bucket,
      SwapTarget target,
      AgentEvents events,
      Clock clock,
      PollScheduler scheduler,
      ComputePool pool,
      Requantizer requantizer) {
    this.settings = settings;
    this.bucket = bucket;
    this.target = target;
    this.events = events;
    this.clock = clock;
    this.scheduler = scheduler;
    this.requantizer = requantizer;
    this.staging = new Staging(settings.stagingDir());
    this.qbom = new QbomLog(settings.qbomDir());
    this.pool = pool;
    this.builder = new VersionBuilder(bucket, staging, requantizer, pool, settings, clock, events);
  }

  /**
   * Checks that the bucket exists and claims the staging area (removing downloads a killed agent
   * left there); starts nothing. Idempotent.
   *
   * @throws IOException naming the bucket or the staging folder when either cannot be used
   */
  public void prepare() throws IOException {
    if (prepared) {
      return;
    }
    bucket.requireExists();
    staging.claim();
    prepared = true;
  }

  /** {@link #prepare}s, then starts polling (and watching a folder bucket). */
  public void start() throws IOException {
    prepare();
    baseHeld();
    scheduler.every(settings.pollInterval(), this::pollQuietly);
    if (bucket instanceof FileBucket fb) {
      try {
        folderWatch =
            new FolderWatch(
                fb.root().resolve(settings.model()), () -> scheduler.soon(this::pollQuietly));
      } catch (IOException | UnsupportedOperationException e) {
        LOG.log(Level.WARNING, "folder watch unavailable, polling only: " + e.getMessage());
      }
    }
    LOG.log(
        Level.INFO,
        "agent watching {0}/{1} every {2}",
        bucket.uri(),
        settings.model(),
        settings.pollInterval());
  }

  private void pollQuietly() {
    try {
      pollOnce();
    } catch (RuntimeException e) {
      LOG.log(Level.WARNING, "poll failed", e);
    } catch (OutOfMemoryError e) {
      // one large allocation of a version being staged (its tensors are checked and re-quantized
      // on the heap); the serving version is untouched and the next poll tries again
      LOG.log(
          Level.WARNING,
          "poll ran out of Java heap (at most {0} MiB) while staging a version; nothing was"
              + " swapped; give the server more heap (KVANT_HEAP, the chart's jvmHeapMiB)",
          Runtime.getRuntime().maxMemory() >> 20);
    }
  }

  /**
   * One poll: advances the watch window (keep or roll back), then, when auto-swap is on, swaps in
   * the version the bucket designates if it is new. Skips if a pipeline is already running.
   *
   * @return the version swapped in by this poll, if any
   */
  public Optional<String> pollOnce() {
    if (!pipeline.tryLock()) {
      return Optional.empty();
    }
    try {
      tick();
      return takeDesired();
    } catch (Rejection e) {
      return Optional.empty();
    } catch (InterruptedIOException e) {
      LOG.log(Level.INFO, "download interrupted: " + e.getMessage());
      return Optional.empty();
    } catch (IOException e) {
      LOG.log(Level.WARNING, "cannot read " + bucket.uri() + ": " + e.getMessage());
      return Optional.empty();
    } finally {
      pipeline.unlock();
    }
  }

  /**
   * Builds and swaps to {@code version} now (the Swap RPC). Waits for a running pipeline.
   *
   * @param mode swap policy, or null for the configured default
   * @return what was swapped in
   * @throws Rejection why not; the serving version is untouched
   */
  public StagedVersion swapTo(String version, SwapMode mode, boolean skipGate) throws Rejection {
    pipeline.lock();
    try {
      tick();
      if (!ManifestCodec.isId(version)) {
        throw new Rejection(Rejection.Reason.BAD_MANIFEST, "'" + version + "' is not a version id");
      }
      if (version.equals(target.serving().id())) {
        throw new Rejection(
            Rejection.Reason.SWAP_REFUSED, "version " + version + " is already serving");
      }
      Watch w = watch;
      if (w != null && version.equals(w.previous)) {
        throw new Rejection(
            Rejection.Reason.SWAP_REFUSED,
            "version " + version + " is the rollback target: use Rollback");
      }
      suppressed.remove(version);
      return run(version, mode == null ? settings.defaultMode() : mode, skipGate);
    } catch (InterruptedIOException e) {
      Thread.currentThread().interrupt();
      throw new Rejection(Rejection.Reason.IO_ERROR, "interrupted", e);
    } finally {
      pipeline.unlock();
    }
  }

  /**
   * Downloads, verifies, recalibrates and gates {@code version} without serving it (for {@code
   * kvant agent verify}); reports nothing.
   */
  public StagedVersion verify(String version) throws Rejection {
    pipeline.lock();
    try {
      Manifest m = readManifest(version).manifest();
      Held base = baseFor(m, 0, false);
      return builder
          .build(m, readManifest(version).sha(), base, target.serving(), true, false)
          .staged();
    } catch (InterruptedIOException e) {
      throw new Rejection(Rejection.Reason.IO_ERROR, "interrupted", e);
    } finally {
      pipeline.unlock();
    }
  }

  /** Records the outcome of one request served by {@code version} (for the error-rate trigger). */
  public void recordOutcome(String version, boolean error) {
    Watch w = watch;
    if (w != null && w.version.equals(version)) {
      w.record(error);
      if (error && w.tripped(settings.rollbackErrorRate(), settings.rollbackMinRequests())) {
        scheduler.soon(this::pollQuietly);
      }
    }
  }

  /**
   * Offers a finished live request (its prompt and generated tokens) for the shadow check: while
   * {@code version} is in its watch window, one request in {@code gate.shadowEvery} is run again,
   * teacher-forced, on both the new and the previous version (on the agent's thread, never the
   * caller's), and the top-1 agreement and KL of their next-token distributions are accumulated. A
   * drift beyond the thresholds rolls back at the next tick.
   */
  public void recordSample(String version, int[] tokens) {
    Watch w = watch;
    if (w == null
        || w.previousView == null
        || !w.version.equals(version)
        || tokens.length < 2
        || !w.sampleNext(settings.gate().shadowEvery())) {
      return;
    }
    int[] copy = tokens.clone();
    scheduler.soon(() -> shadow(w, copy));
  }

  /** Runs one shadowed request; a drift beyond the thresholds schedules a tick (rollback). */
  void shadow(Watch w, int[] tokens) {
    try {
      ServingView now = target.serving();
      if (watch != w || !now.id().equals(w.version)) {
        return;
      }
      int n = Math.min(tokens.length, now.config().contextLength());
      float[] before =
          QualityGate.logitsOf(now.config(), w.previousView.weights(), tokens, n, pool);
      float[] after = QualityGate.logitsOf(now.config(), now.weights(), tokens, n, pool);
      w.addShadow(before, after, n, now.config().vocabSize());
      if (w.drifted(settings.gate())) {
        pollQuietly();
      }
    } catch (RuntimeException e) {
      LOG.log(Level.WARNING, "shadow check of " + w.version + " failed: " + e);
    }
  }

  /** The version in its watch window, if any. */
  public Optional<String> watching() {
    Watch w = watch;
    return w == null ? Optional.empty() : Optional.of(w.version);
  }

  /** QBOM records of the recent swaps, oldest first. */
  public List<io.kvant.quant.artifact.Qbom> qbom() {
    return qbom.recent();
  }

  /** The reason of the last rejection, "" if none. */
  public String lastRejection() {
    return lastRejection;
  }

  private StagedVersion run(String version, SwapMode mode, boolean skipGate)
      throws Rejection, InterruptedIOException {
    long start = clock.millis();
    String etag = "";
    try {
      CachedManifest cm = readManifest(version);
      etag = cm.etag();
      Manifest m = cm.manifest();
      events.publish(
          Step.DETECTED,
          version,
          (m.isDelta() ? "delta of " + m.parent().get() : "full version")
              + ", recipe "
              + m.recipe()
              + ", published by "
              + m.publisher()
              + " at "
              + m.created(),
          Map.of(
              "parent", m.parent().orElse(""),
              "recipe", m.recipe(),
              "publisher", m.publisher(),
              "tensors", Integer.toString(m.tensors().size())));
      Held base = baseFor(m, 0, true);
      VersionBuilder.Built b = builder.build(m, cm.sha(), base, target.serving(), !skipGate, true);
      Map<String, String> attrs = new LinkedHashMap<>(b.staged().figures());
      attrs.put("recalibrated_tensors", Integer.toString(b.staged().recalibrated()));
      attrs.put("changed_tensors", Integer.toString(b.staged().changed()));
      attrs.put("pipeline_ms", Long.toString(clock.millis() - start));
      events.publish(Step.STAGED, version, "ready to swap (" + mode + ")", attrs);
      ServingView previousView = target.serving();
      String previous = previousView.id();
      try {
        target.swap(b.staged(), mode, start);
      } catch (SwapTarget.SwapRefusedException e) {
        throw new Rejection(
            Rejection.Reason.SWAP_REFUSED, "the server refused the swap: " + e.getMessage());
      }
      commit(version);
      qbom.add(b.qbom());
      held.put(version, b.held());
      watch =
          new Watch(version, previous, clock.instant().plus(settings.watchWindow()), previousView);
      prune();
      refused.remove(version);
      return b.staged();
    } catch (Rejection e) {
      refused.put(version, etag);
      lastRejection = e.reason() + ": " + e.getMessage();
      staging.discard(version);
      events.publish(
          Step.REJECTED,
          version,
          e.getMessage(),
          Map.of("reason", e.reason().code(), "serving", target.serving().id()));
      LOG.log(
          Level.WARNING, "version {0} rejected ({1}): {2}", version, e.reason(), e.getMessage());
      throw e;
    }
  }

  /** Records the serving version in the staging area, for {@link #resume} after a restart. */
  private void commit(String version) {
    try {
      staging.commit(version);
    } catch (IOException e) {
      LOG.log(Level.WARNING, "cannot record the committed version " + version + ": " + e);
    }
  }

  /**
   * Brings a restarted server back to the version it last committed (recorded in the staging area),
   * or, with no usable record and auto-swap on, to the version the bucket designates now. The
   * server calls this before it reports SERVING, so it never serves a version it was not told to. A
   * committed version is not gated again (it passed when it was taken); its files are still
   * verified. Returns the version swapped in, if any.
   */
  public Optional<String> resume() {
    pipeline.lock();
    try {
      Optional<String> committed = staging.committed();
      String serving = target.serving().id();
      if (committed.isPresent() && committed.get().equals(serving)) {
        return Optional.empty();
      }
      if (committed.isPresent() && ManifestCodec.isId(committed.get())) {
        try {
          run(committed.get(), SwapMode.DRAIN, true);
          LOG.log(Level.INFO, "resumed committed version {0}", committed.get());
          return committed;
        } catch (Rejection e) {
          LOG.log(
              Level.WARNING,
              "committed version {0} cannot be restored ({1}); taking the bucket''s current one",
              committed.get(),
              e.getMessage());
        }
      }
      return takeDesired();
    } catch (Rejection e) {
      return Optional.empty();
    } catch (IOException e) {
      LOG.log(Level.WARNING, "cannot read " + bucket.uri() + " at start: " + e.getMessage());
      return Optional.empty();
    } finally {
      pipeline.unlock();
    }
  }

  private void rollBack(Watch w, String reason, String why, Map<String, String> attrs) {
    try {
      target.rollback();
      commit(w.previous);
      suppressed.add(w.version);
      watch = null;
      lastRejection = reason + ": " + why;
      events.publish(Step.REJECTED, w.version, why, attrs);
      LOG.log(Level.WARNING, "version {0} {1}", w.version, why);
      prune();
    } catch (SwapTarget.SwapRefusedException e) {
      LOG.log(Level.ERROR, "automatic rollback of " + w.version + " failed: " + e.getMessage());
    }
  }

  /** Keeps the window moving: roll back on errors, keep when it passed, notice outside swaps. */
  private void tick() {
    Watch w = watch;
    if (w == null) {
      return;
    }
    String serving = target.serving().id();
    if (!serving.equals(w.version)) {
      commit(serving);
      watch = null;
      if (serving.equals(w.previous)) {
        suppressed.add(w.version);
      }
      prune();
      return;
    }
    if (w.drifted(settings.gate())) {
      GateSettings g = settings.gate();
      String why =
          String.format(
              "rolled back automatically: on %d positions of shadowed live requests, top-1"
                  + " agreement with %s %.4f (min %.4f), mean KL %.5f (max %.5f)",
              w.shadowPositions(),
              w.previous,
              w.shadowTop1(),
              g.shadowMinTop1(),
              w.shadowMeanKl(),
              g.shadowMaxKl());
      rollBack(
          w,
          Rejection.Reason.SHADOW_DRIFT.code(),
          why,
          Map.of(
              "reason",
              Rejection.Reason.SHADOW_DRIFT.code(),
              "serving",
              w.previous,
              "positions",
              Long.toString(w.shadowPositions()),
              "top1",
              String.format("%.4f", w.shadowTop1()),
              "mean_kl",
              String.format("%.6f", w.shadowMeanKl())));
      return;
    }
    if (w.tripped(settings.rollbackErrorRate(), settings.rollbackMinRequests())) {
      String why =
          String.format(
              "rolled back automatically: %d of %d requests failed (error rate above %.3f)",
              w.errors(), w.requests(), settings.rollbackErrorRate());
      try {
        target.rollback();
        commit(w.previous);
        suppressed.add(w.version);
        watch = null;
        lastRejection = Rejection.Reason.ERROR_RATE.code() + ": " + why;
        events.publish(
            Step.REJECTED,
            w.version,
            why,
            Map.of(
                "reason",
                Rejection.Reason.ERROR_RATE.code(),
                "serving",
                w.previous,
                "errors",
                Long.toString(w.errors()),
                "requests",
                Long.toString(w.requests())));
        prune();
      } catch (SwapTarget.SwapRefusedException e) {
        LOG.log(Level.ERROR, "automatic rollback of " + w.version + " failed: " + e.getMessage());
      }
      return;
    }
    if (!clock.instant().isBefore(w.until)) {
      watch = null;
      target.dropStandby();
      events.publish(
          Step.KEPT,
          w.version,
          "watch window passed; " + w.previous + " released",
          Map.of(
              "previous", w.previous,
              "requests", Long.toString(w.requests()),
              "errors", Long.toString(w.errors())));
      prune();
    }
  }

  private void prune() {
    Set<String> keep = new HashSet<>();
    keep.add(target.serving().id());
    Watch w = watch;
    if (w != null) {
      keep.add(w.previous);
    }
    held.keySet().retainAll(keep);
    baseHeld();
  }

  /** The agent's record of the serving version, made from the server's view when new. */
  private Held baseHeld() {
    ServingView v = target.serving();
    return held.computeIfAbsent(
        v.id(),
        id -> {
          Map<String, Weight> values = WeightLayout.of(v.config(), v.weights()).named(v.weights());
          return new Held(
              id,
              v.recipe(),
              "",
              v.recipe().equals("none") ? values : null,
              values,
              Map.of(),
              Map.of(),
              Map.of());
        });
  }

  private Held baseFor(Manifest m, int depth, boolean report)
      throws Rejection, InterruptedIOException {
    if (m.parent().isEmpty()) {
      return baseHeld();
    }
    String parent = m.parent().get();
    Held h = held.get(parent);
    if (h != null) {
      return h;
    }
    Optional<CachedManifest> pm;
    try {
      pm =
          bucket.stat(manifestKey(parent)).isPresent()
              ? Optional.of(readManifest(parent))
              : Optional.empty();
    } catch (IOException e) {
      throw new Rejection(
          Rejection.Reason.IO_ERROR, "cannot read parent " + parent + ": " + e.getMessage(), e);
    }
    if (pm.isEmpty()) {
      throw new Rejection(
          Rejection.Reason.MISSING_PARENT,
          "parent version " + parent + " of " + m.version() + " is neither held nor in the bucket");
    }
    if (depth >= MAX_PARENT_DEPTH) {
      throw new Rejection(
          Rejection.Reason.MISSING_PARENT, "delta chain deeper than " + MAX_PARENT_DEPTH);
    }
    Manifest p = pm.get().manifest();
    Held grand = baseFor(p, depth + 1, report);
    LOG.log(Level.INFO, "building parent {0} of {1} as a base", parent, m.version());
    return builder.build(p, pm.get().sha(), grand, target.serving(), false, false).held();
  }

  private String manifestKey(String version) {
    return settings.model() + "/versions/" + version + "/manifest.json";
  }

  /** Reads (through the ETag cache) and parses a version's manifest. */
  private CachedManifest readManifest(String version) throws Rejection {
    String key = manifestKey(version);
    try {
      Optional<ObjectInfo> info = bucket.stat(key);
      if (info.isEmpty()) {
        throw new Rejection(
            Rejection.Reason.NO_MANIFEST,
            "version " + version + " has no manifest.json (incomplete)");
      }
      CachedManifest cm = cached(info.get());
      if (cm.error() != null) {
        throw new Rejection(Rejection.Reason.BAD_MANIFEST, cm.error());
      }
      if (!cm.manifest().version().equals(version)
          || !cm.manifest().model().equals(settings.model())) {
        throw new Rejection(
            Rejection.Reason.BAD_MANIFEST,
            "manifest of "
                + version
                + " names "
                + cm.manifest().model()
                + "/"
                + cm.manifest().version());
      }
      return cm;
    } catch (IOException e) {
      throw new Rejection(Rejection.Reason.IO_ERROR, key + ": " + e.getMessage(), e);
    }
  }

  private CachedManifest cached(ObjectInfo info) throws IOException {
    synchronized (manifests) {
      CachedManifest c = manifests.get(info.key());
      if (c != null && c.etag().equals(info.etag())) {
        return c;
      }
    }
    byte[] bytes = bucket.readSmall(info.key(), ManifestCodec.MAX_BYTES).orElse(new byte[0]);
    CachedManifest c;
    try {
      c = new CachedManifest(info.etag(), ManifestCodec.parse(bytes), Digests.sha256(bytes), null);
    } catch (ManifestException e) {
      c =
          new CachedManifest(
              info.etag(), null, Digests.sha256(bytes), info.key() + ": " + e.getMessage());
    }
    synchronized (manifests) {
      if (manifests.size() > 4096) {
        manifests.clear();
      }
      manifests.put(info.key(), c);
    }
    return c;
  }

  /** The version the bucket designates: the channel's, or the newest complete one. */
  /**
   * Runs the bucket's desired version through the pipeline when auto-swap is on and the version is
   * worth trying; returns it, or empty when nothing was tried.
   */
  private Optional<String> takeDesired() throws IOException, Rejection {
    if (!settings.autoSwap()) {
      return Optional.empty();
    }
    Optional<String> want = desired();
    if (want.isEmpty() || !worthTrying(want.get())) {
      return Optional.empty();
    }
    run(want.get(), settings.defaultMode(), false);
    return want;
  }

  Optional<String> desired() throws IOException {
    if (settings.channel().isPresent()) {
      String key = settings.model() + "/channels/" + settings.channel().get();
      Optional<byte[]> b = bucket.readSmall(key, 256);
      if (b.isEmpty()) {
        return Optional.empty();
      }
      String v = new String(b.get(), StandardCharsets.UTF_8).strip();
      if (!ManifestCodec.isId(v)) {
        reportSkipped(
            "?",
            key,
            v,
            Rejection.Reason.BAD_CHANNEL.code(),
            key + ": '" + v.replaceAll("[^\\x20-\\x7e]", "?") + "' is not a version id");
        return Optional.empty();
      }
      return Optional.of(v);
    }
    String prefix = settings.model() + "/versions/";
    Manifest best = null;
    for (ObjectInfo o : bucket.list(prefix, MAX_LISTED)) {
      String rest = o.key().substring(prefix.length());
      int slash = rest.indexOf('/');
      if (slash <= 0 || !rest.substring(slash).equals("/manifest.json")) {
        continue;
      }
      String dir = rest.substring(0, slash);
      CachedManifest c = cached(o);
      String problem = problem(c, dir);
      if (problem != null) {
        reportSkipped(dir, o.key(), o.etag(), Rejection.Reason.BAD_MANIFEST.code(), problem);
        continue;
      }
      Comparator<Manifest> order =
          Comparator.comparing(Manifest::created).thenComparing(Manifest::version);
      if (best == null || order.compare(c.manifest(), best) > 0) {
        best = c.manifest();
      }
    }
    return Optional.ofNullable(best).map(Manifest::version);
  }

  /** Why a listed manifest cannot be taken, or null when it can. */
  private String problem(CachedManifest c, String dir) {
    if (c.error() != null) {
      return c.error();
    }
    Manifest m = c.manifest();
    if (!m.version().equals(dir) || !m.model().equals(settings.model())) {
      return "manifest in "
          + settings.model()
          + "/versions/"
          + dir
          + " names "
          + m.model()
          + "/"
          + m.version();
    }
    return null;
  }

  /**
   * Reports a version polling sees and cannot take: a REJECTED event (hence a metric and a log line
   * in the server) and a warning, once per manifest content (ETag), so an operator learns why the
   * newest upload is not serving without sending a Swap.
   */
  private void reportSkipped(String dir, String key, String etag, String reason, String problem) {
    if (etag.equals(skipped.put(key, etag))) {
      return;
    }
    if (skipped.size() > 4096) {
      skipped.clear();
    }
    String version = ManifestCodec.isId(dir) ? dir : "?";
    lastRejection = reason + ": " + problem;
    events.publish(
        Step.REJECTED,
        version,
        problem,
        Map.of("reason", reason, "serving", target.serving().id()));
    LOG.log(Level.WARNING, "version {0} skipped ({1}): {2}", version, reason, problem);
  }

  private boolean worthTrying(String version) throws IOException {
    if (version.equals(target.serving().id()) || suppressed.contains(version)) {
      return false;
    }
    Watch w = watch;
    if (w != null && version.equals(w.previous)) {
      return false;
    }
    String refusedEtag = refused.get(version);
    if (refusedEtag != null) {
      Optional<ObjectInfo> now = bucket.stat(manifestKey(version));
      return now.isPresent() && !now.get().etag().equals(refusedEtag);
    }
    return true;
  }

  /** Stops polling and watching; a download in progress is interrupted (staging kept). */
  @Override
  public void close() {
    if (folderWatch != null) {
      folderWatch.close();
    }
    scheduler.close();
  }
}
