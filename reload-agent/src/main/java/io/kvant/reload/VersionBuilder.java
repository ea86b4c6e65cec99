package io.kvant.reload;

import io.kvant.engine.model.ModelWeights;
import io.kvant.engine.model.TensorNames;
import io.kvant.engine.model.Weight;
import io.kvant.engine.model.WeightLayout;
import io.kvant.engine.tensor.ComputePool;
import io.kvant.engine.tensor.DType;
import io.kvant.engine.tensor.Tensor;
import io.kvant.engine.tokenizer.Tokenizer;
import io.kvant.quant.artifact.Digests;
import io.kvant.quant.artifact.Manifest;
import io.kvant.quant.artifact.Qbom;
import io.kvant.quant.artifact.QbomEntry;
import io.kvant.quant.encoding.AimetEncodings;
import io.kvant.quant.encoding.TensorEncoding;
import io.kvant.quant.quantize.WeightQuantizer;
import io.kvant.reload.bucket.Bucket;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;

/**
 * Turns a manifest into a staged version: download and verify, diff against the base version,
 * recalibrate only what changed, quality gate.
 *
 * <p>Diff: a published tensor is unchanged when its source digest equals the base's digest for the
 * same name; then the base's objects (full-precision and served) are reused as they are. Tensors a
 * delta does not publish are inherited the same way. Recalibration: when the recipe differs from
 * the base's, every tensor the recipe quantizes is re-quantized from full precision; otherwise only
 * the changed ones are. The gate compares the served weights with the version's own full-precision
 * weights.
 */
final class VersionBuilder {
  private static final Logger LOG = System.getLogger("io.kvant.reload.Build");
  static final int GOLDEN_MAX_TOKENS = 64;

  /** What a build produced. */
  record Built(Held held, StagedVersion staged, Qbom qbom) {}

  private final Bucket bucket;
  private final Staging staging;
  private final Requantizer rq;
  private final ComputePool pool;
  private final AgentSettings settings;
  private final Clock clock;
  private final AgentEvents events;

  VersionBuilder(
      Bucket bucket,
      Staging staging,
      Requantizer rq,
      ComputePool pool,
      AgentSettings settings,
      Clock clock,
      AgentEvents events) {
    this.bucket = bucket;
    this.staging = staging;
    this.rq = rq;
    this.pool = pool;
    this.settings = settings;
    this.clock = clock;
    this.events = events;
  }

  Built build(
      Manifest m, String manifestSha, Held base, ServingView serving, boolean gate, boolean report)
      throws Rejection, InterruptedIOException {
    AgentEvents ev = report ? events : (s, v, msg, a) -> {};
    if (!rq.knows(m.recipe())) {
      throw new Rejection(
          Rejection.Reason.UNKNOWN_RECIPE, "recipe '" + m.recipe() + "' is not known here");
    }
    String prefix = settings.model() + "/versions/" + m.version() + "/";
    Path dir;
    try {
      dir = staging.begin(m.version());
    } catch (IOException e) {
      throw new Rejection(Rejection.Reason.IO_ERROR, "staging: " + e.getMessage(), e);
    }
    boolean killed = false;
    try {
      long t0 = clock.millis();
      long bytes = new Downloader(bucket).download(prefix, m, dir, settings.maxDownloadBytes());
      ev.publish(
          Step.DOWNLOADED,
          m.version(),
          m.files().size() + " files, " + bytes + " bytes, sizes and sha256 match",
          Map.of("bytes", Long.toString(bytes), "duration_ms", Long.toString(clock.millis() - t0)));

      WeightLayout slots = WeightLayout.of(serving.config(), serving.weights());
      Map<String, Weight> published = VersionReader.read(m, dir, slots);
      List<String> calibrationText = List.of();
      String calibrationSha = "builtin";
      if (m.calibration().isPresent()) {
        byte[] cal = Files.readAllBytes(dir.resolve(m.calibration().get()));
        calibrationText = CalibrationPrompts.parse(cal);
        calibrationSha = Digests.sha256(cal);
      }
      Map<String, TensorEncoding> given = Map.of();
      if (m.encodings().isPresent()) {
        given = readEncodings(dir.resolve(m.encodings().get()), slots);
      }
      Map<String, TensorEncoding> encodings = new HashMap<>(base.encodings);
      encodings.putAll(given);
      ev.publish(
          Step.VERIFIED,
          m.version(),
          published.size() + " tensors: shapes, dtypes, digests checked, all values finite",
          Map.of("tensors", Integer.toString(published.size())));

      // Diff against the base and build the new maps, reusing the base's objects.
      if (base.full == null && (m.isDelta() || !m.recipe().equals(base.recipe))) {
        throw new Rejection(
            Rejection.Reason.MISSING_PARENT,
            "the full-precision weights of " + base.id + " are not known to the agent");
      }
      boolean recipeChanged = !m.recipe().equals(base.recipe);
      Map<String, Weight> full = new LinkedHashMap<>();
      Map<String, Weight> served = new LinkedHashMap<>();
      Map<String, String> digests = new HashMap<>();
      Map<String, QbomEntry> qbom = new LinkedHashMap<>();
      TreeSet<String> changed = new TreeSet<>();
      Map<String, String> sourceSha = new HashMap<>();
      m.tensors().forEach(t -> sourceSha.put(t.name(), t.sha256()));
      for (String name : slots.all().keySet()) {
        Weight p = published.get(name);
        if (p != null && !sourceSha.get(name).equals(base.digest(name))) {
          changed.add(name);
          full.put(name, p);
          digests.put(name, sourceSha.get(name));
        } else {
          full.put(name, base.full != null ? base.full.get(name) : base.served.get(name));
          String d = base.digest(name);
          if (d != null) {
            digests.put(name, d);
          }
        }
      }
      List<int[]> calibration = tokenize(serving.tokenizer(), calibrationText, serving);
      List<String> recalibrated = new ArrayList<>();
      int applied = 0;
      for (String name : slots.all().keySet()) {
        TensorEncoding enc = given.get(name);
        boolean newEncoding = enc != null && !enc.equals(base.encodings.get(name));
        boolean redo = changed.contains(name) || recipeChanged || newEncoding;
        if (!redo) {
          served.put(name, base.served.get(name));
          QbomEntry inherited = base.qbom.get(name);
          qbom.put(
              name,
              inherited != null
                  ? inherited.withOrigin(QbomEntry.Origin.INHERITED)
                  : entry(
                      name,
                      base.served.get(name),
                      0,
                      0,
                      "full",
                      "none",
                      "none",
                      digests,
                      QbomEntry.Origin.INHERITED));
          continue;
        }
        Weight value = full.get(name);
        switch (value) {
          case Weight.Matrix mx
              when changed.contains(name) && prequantized(mx) && m.recipe().equals("none") -> {
            // Published pre-quantized (a `kvant quantize` folder): served as it is; its encoding,
            // when the version lists one, says how it was made.
            served.put(name, value);
            int bits = enc != null ? enc.bitwidth() : mx.tensor().dtype().bitsPerElement();
            qbom.put(
                name,
                entry(
                    name,
                    value,
                    bits,
                    enc != null ? enc.blockSize() : 0,
                    enc != null ? scheme(enc) : "pre-quantized",
                    "none",
                    "none",
                    digests,
                    QbomEntry.Origin.PUBLISHED));
          }
          case Weight.Matrix mx when enc != null -> {
            // Encodings from the bucket are used as they are: no scales are computed.
            Tensor q;
            try {
              q = WeightQuantizer.apply(mx.values(), enc);
            } catch (IllegalArgumentException e) {
              throw new Rejection(Rejection.Reason.BAD_ENCODINGS, name + ": " + e.getMessage());
            }
            Weight w = new Weight.Matrix(q);
            served.put(name, w);
            applied++;
            qbom.put(
                name,
                entry(
                    name,
                    w,
                    enc.bitwidth(),
                    enc.blockSize(),
                    scheme(enc),
                    "encodings",
                    "none",
                    digests,
                    QbomEntry.Origin.ENCODINGS));
          }
          case Weight.Matrix mx when rq.quantizes(m.recipe(), name, mx.tensor()) -> {
            Requantizer.Quantized q = rq.quantize(m.recipe(), name, mx.tensor(), calibration);
            Weight w = new Weight.Matrix(q.tensor());
            served.put(name, w);
            recalibrated.add(name);
            qbom.put(
                name,
                entry(
                    name,
                    w,
                    q.bits(),
                    q.groupSize(),
                    q.scheme(),
                    q.method(),
                    calibrationSha,
                    digests,
                    QbomEntry.Origin.RECALIBRATED));
          }
          case Weight.Matrix mx -> {
            served.put(name, value);
            qbom.put(
                name,
                entry(
                    name,
                    value,
                    0,
                    0,
                    "full",
                    "none",
                    "none",
                    digests,
                    QbomEntry.Origin.PUBLISHED));
          }
          case Weight.Vector v -> {
            served.put(name, value);
            qbom.put(
                name,
                entry(
                    name,
                    value,
                    32,
                    0,
                    "full",
                    "none",
                    "none",
                    digests,
                    QbomEntry.Origin.PUBLISHED));
          }
        }
      }
      String names = String.join(",", recalibrated.subList(0, Math.min(8, recalibrated.size())));
      ev.publish(
          Step.RECALIBRATED,
          m.version(),
          recalibrated.size()
              + " tensors re-quantized ("
              + changed.size()
              + " changed, recipe "
              + m.recipe()
              + (recipeChanged ? ", changed from " + base.recipe : "")
              + ")",
          Map.of(
              "recalibrated_tensors",
              Integer.toString(recalibrated.size()),
              "changed_tensors",
              Integer.toString(changed.size()),
              "recipe_changed",
              Boolean.toString(recipeChanged),
              "encodings_applied",
              Integer.toString(applied),
              "tensors",
              names));
      LOG.log(
          Level.INFO,
          "version={0} changed={1} recalibrated={2} {3}",
          m.version(),
          changed.size(),
          recalibrated.size(),
          recalibrated);

      ModelWeights fullW = slots.assemble(full);
      boolean same = full.keySet().stream().allMatch(n -> full.get(n).equals(served.get(n)));
      ModelWeights servedW = same ? fullW : slots.assemble(served);
      Map<String, String> figures = new LinkedHashMap<>();
      if (gate) {
        List<int[]> golden = tokenize(serving.tokenizer(), settings.goldenPrompts(), serving);
        QualityGate.Result r = QualityGate.run(serving.config(), fullW, servedW, golden, pool);
        figures.put("top1_agreement", String.format("%.4f", r.top1()));
        figures.put("mean_kl", String.format("%.6f", r.meanKl()));
        figures.put("positions", Integer.toString(r.positions()));
        if (!r.passes(settings.gate())) {
          throw new Rejection(
              Rejection.Reason.GATE_FAILED, "quality gate failed: " + r.describe(settings.gate()));
        }
        // Against the version serving now, on the golden and calibration prompts and held-out text.
        List<int[]> prompts = new ArrayList<>(golden);
        prompts.addAll(calibration.subList(0, Math.min(16, calibration.size())));
        List<int[]> heldOut =
            tokenize(serving.tokenizer(), AgentSettings.BUILTIN_HELD_OUT, serving);
        QualityGate.Comparison c =
            QualityGate.compare(
                serving.config(), serving.weights(), servedW, prompts, heldOut, pool);
        figures.put("ppl_ratio_vs_serving", String.format("%.4f", c.pplRatio()));
        figures.put("kl_vs_serving", String.format("%.6f", c.meanKl()));
        figures.put("top1_vs_serving", String.format("%.4f", c.top1()));
        LOG.log(Level.INFO, "version={0} gate: {1}", m.version(), c.describe(settings.gate()));
        if (!c.passes(settings.gate())) {
          throw new Rejection(
              Rejection.Reason.GATE_FAILED, "quality gate failed: " + c.describe(settings.gate()));
        }
        ev.publish(
            Step.GATE_PASSED,
            m.version(),
            r.describe(settings.gate()) + "; " + c.describe(settings.gate()),
            figures);
      } else if (report) {
        ev.publish(
            Step.GATE_PASSED, m.version(), "gate skipped on request", Map.of("skipped", "true"));
      }
      Held held =
          new Held(m.version(), m.recipe(), m.publisher(), full, served, qbom, digests, encodings);
      StagedVersion staged =
          new StagedVersion(
              m.version(),
              m.parent().orElse(""),
              m.recipe(),
              manifestSha,
              servedW,
              recalibrated.size(),
              changed.size(),
              figures);
      Qbom record =
          new Qbom(
              settings.model(),
              m.version(),
              m.parent(),
              m.recipe(),
              m.publisher(),
              Optional.of(manifestSha),
              clock.instant(),
              new ArrayList<>(qbom.values()));
      return new Built(held, staged, record);
    } catch (InterruptedIOException e) {
      // Stopped (agent shutdown): leave the partial download as a kill would; start() cleans it.
      killed = true;
      throw e;
    } catch (IOException e) {
      throw new Rejection(Rejection.Reason.IO_ERROR, e.getMessage(), e);
    } finally {
      if (!killed) {
        staging.discard(m.version());
      }
    }
  }

  private static Map<String, TensorEncoding> readEncodings(Path file, WeightLayout slots)
      throws Rejection, IOException {
    byte[] bytes = Files.readAllBytes(file);
    String json;
    try {
      json = StandardCharsets.UTF_8.newDecoder().decode(java.nio.ByteBuffer.wrap(bytes)).toString();
    } catch (java.nio.charset.CharacterCodingException e) {
      throw new Rejection(Rejection.Reason.BAD_ENCODINGS, "encodings: not UTF-8");
    }
    try {
      return AimetEncodings.read(
          json,
          n -> {
            WeightLayout.Slot s = slots.slot(n);
            return s != null && s.matrix() ? new int[] {s.rows(), s.cols()} : null;
          });
    } catch (IllegalArgumentException e) {
      throw new Rejection(
          Rejection.Reason.BAD_ENCODINGS, "encodings do not fit the model: " + e.getMessage());
    }
  }

  /** Whether a matrix is stored quantized (not F32, as full-precision values are read). */
  private static boolean prequantized(Weight.Matrix mx) {
    return mx.tensor().dtype() != DType.F32;
  }

  private static String scheme(TensorEncoding enc) {
    return (enc.symmetric() ? "symmetric/" : "asymmetric/")
        + enc.granularity().name().toLowerCase(java.util.Locale.ROOT);
  }

  /**
   * A QBOM entry for {@code value}; {@code bits} 0 means the bits of its storage type (32 for a
   * vector).
   */
  private static QbomEntry entry(
      String name,
      Weight value,
      int bits,
      int group,
      String scheme,
      String method,
      String calibration,
      Map<String, String> digests,
      QbomEntry.Origin origin) {
    String type =
        switch (value) {
          case Weight.Matrix mx -> mx.tensor().dtype().name();
          case Weight.Vector v -> "F32";
        };
    int b =
        bits != 0
            ? bits
            : switch (value) {
              case Weight.Matrix mx -> mx.tensor().dtype().bitsPerElement();
              case Weight.Vector v -> 32;
            };
    return new QbomEntry(
        name,
        TensorNames.roleOf(name).jsonName(),
        type,
        b,
        group,
        scheme,
        method,
        calibration,
        digests.getOrDefault(name, ""),
        origin);
  }

  static List<int[]> tokenize(Tokenizer tok, List<String> texts, ServingView serving) {
    int max = Math.min(GOLDEN_MAX_TOKENS, serving.config().contextLength());
    List<int[]> out = new ArrayList<>();
    for (String t : texts) {
      int[] ids = tok.encode(t, true);
      if (ids.length > 0) {
        out.add(Arrays.copyOf(ids, Math.min(ids.length, max)));
      }
    }
    return out;
  }
}
