package io.kvant.cuda.bench;

import io.kvant.cuda.CudaBackend;
import io.kvant.cuda.device.CopyBandwidth;
import io.kvant.cuda.device.CudaDevice;
import io.kvant.cuda.device.CudaKernels;
import io.kvant.cuda.device.CudaOptions;
import io.kvant.cuda.device.DeviceBuffer;
import io.kvant.cuda.device.LaunchProfile;
import io.kvant.cuda.model.AttentionKernel;
import io.kvant.cuda.model.CudaTransformer;
import io.kvant.cuda.model.DecodeFusion;
import io.kvant.cuda.model.DeviceModel;
import io.kvant.cuda.model.MgemvSplits;
import io.kvant.cuda.model.SyntheticModels;
import io.kvant.cuda.model.W8a8Products;
import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.DeviceSampling;
import io.kvant.engine.kv.EvictionPolicyKind;
import io.kvant.engine.kv.KeyRope;
import io.kvant.engine.kv.KvCacheConfig;
import io.kvant.engine.kv.KvCacheManager;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvEncoding;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.kv.KvScales;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.RopeStyle;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * GPU benchmarks: {@code bandwidth} (device-to-device copy, the memory ceiling) and {@code decode}
 * (aggregate decode tokens/s of a synthetic Llama-shaped BF16 model at several batch sizes, through
 * the real {@link CudaTransformer}, KV manager and device sampling).
 *
 * <pre>
 * bandwidth [--gib 4]
 * gemv [--rows 1,2,4,8] [--weights bf16,int8,fp8-e4m3,int4-g128 (default all)]
 * decode --shape llama-3.2-1b|llama-3-8b [--batch 1,16,64,256] [--prompt 128] [--steps 128]
 *        [--weights bf16|int8|fp8-e4m3|int4-g128|int4-g32] [--graphs on|off|both]
 *        [--fuse off,products,products-and-norm] [--pdl on|off|both] [--attention rows,tiled]
 *        [--splits fixed,by-shape,split-k,split-k-f4,mq-k8u4,mq-k16u2,mq-k16u4,mq-32,
 *                  mq-32-k16u2-8bit,mq-32-tall-k8u4,mq-32-tall-int4-k8u4,mq-staged-k8,
 *                  mq-staged-k16,mq-staged,mq-wide,mq-wide-k16s4,mq-wide-k8s4,
 *                  mq-wide-tall-k8s4]
 *        [--profile (with --graphs off)]
 *        [--kv f16|int8|fp8|f32] [--w8a8 off,16] [--layout tiled|rows]
 *        [--kv-encoding per-token,per-token-mse,kivi,kivi-mse,centered-mse,centered-qmse]
 *        [--sample greedy|T:P:K[:M] (temperature, top-p, top-k, min-p of every decode step's draw)]
 * </pre>
 *
 * <p>{@code --graphs both} measures every batch with and without CUDA graphs in one run, so the two
 * columns compare as a ratio on the same machine state; {@code --pdl both} does the same for
 * programmatic dependent launch.
 */
public final class CudaBench {
  private CudaBench() {}

  public static void main(String[] args) throws Exception {
    if (args.length == 0) {
      System.err.println(
          "usage: bandwidth [--gib N] | decode --shape NAME [--batch 1,16] [--prompt N] [--steps N]");
      System.exit(2);
    }
    try (CudaBackend backend = CudaBackend.open(CudaOptions.fromEnvironment(System.getenv()))) {
      System.out.println("device: " + backend.device().describe());
      switch (args[0]) {
        case "bandwidth" -> bandwidth(backend.device(), (int) flag(args, "--gib", 4));
        case "decode" -> decode(backend, args);
        case "gemv" -> gemv(backend, args);
        default -> throw new IllegalArgumentException("unknown benchmark " + args[0]);
      }
    }
  }

  private static long flag(String[] args, String name, long def) {
    for (int i = 0; i + 1 < args.length; i++) {
      if (args[i].equals(name)) {
        return Long.parseLong(args[i + 1]);
      }
    }
    return def;
  }

  private static boolean hasFlag(String[] args, String name) {
    return java.util.Arrays.asList(args).contains(name);
  }

  private static String flagText(String[] args, String name, String def) {
    for (int i = 0; i + 1 < args.length; i++) {
      if (args[i].equals(name)) {
        return args[i + 1];
      }
    }
    return def;
  }

  /**
   * Device-to-device copy bandwidth, read + write bytes counted, median of 20 ({@link
   * CopyBandwidth}).
   */
  static double bandwidth(CudaDevice d, int gib) {
    double med = CopyBandwidth.measure(d, (long) gib << 30, 20, System::nanoTime);
    System.out.printf(
        Locale.ROOT,
        "bandwidth: device-to-device copy of %d GiB: %.2f TB/s (read + write)%n",
        gib,
        med);
    return med;
  }

  /** Decodes rows {@code [r0, r0 + m)} of the weights at {@code w0} into the F16 tile. */
  private interface TileDecode {
    void tile(long w0, int r0, int m);
  }

  /** The tile path of a quantized product: decode a tile, multiply it, over all output rows. */
  private interface TileProduct {
    void run(long w0, TileDecode decode);
  }

  /** One product to time: what it reads and how to launch it on weight copy {@code i}. */
  private record GemvCase(
      String weights, String kernel, long bytes, java.util.function.IntConsumer launch) {}

  /**
   * The products alone: every product kernel on 8B-shaped matrices at {@code --rows} (default 1, 2,
   * 4 and 8; mgemv only up to 8, the W8A8 products of INT8 and FP8 E4M3 codes at every count,
   * activation quantization and epilogue included), as weight bytes read per second. Timing: many
   * launches captured into one CUDA graph, each on another copy of the weights (together larger
   * than the 50 MB L2, so every launch reads HBM), the graph timed with events, median of 5 graph
   * launches divided by the launches: no host launch cost in the figure (launching one kernel at a
   * time from the host and timing it with events measured the host, not the kernel).
   */
  static void gemv(CudaBackend backend, String[] args) {
    CudaDevice d = backend.device();
    CudaKernels k = backend.kernels();
    int[] rowCounts =
        java.util.Arrays.stream(flagText(args, "--rows", "1,2,4,8").split(","))
            .map(String::trim)
            .mapToInt(Integer::parseInt)
            .toArray();
    int maxRows = java.util.Arrays.stream(rowCounts).max().orElse(8);
    // --weights int4-g128,bf16: only these weight kinds (default every one)
    List<String> only = new ArrayList<>();
    for (String w : flagText(args, "--weights", "").split(",")) {
      if (!w.isBlank()) {
        only.add(w.trim());
      }
    }
    W8a8Products w8a8 = new W8a8Products(k, backend.gemm());
    int[][] shapes = {{4096, 4096}, {14336, 4096}, {4096, 14336}, {128256, 4096}};
    long pool = 1L << 30;
    var start = d.driver().createEvent();
    var end = d.driver().createEvent();
    System.out.println("| out x in | rows | weights | kernel | us | weight GB/s |");
    System.out.println("| --- | ---: | --- | --- | ---: | ---: |");
    for (int[] sh : shapes) {
      int out = sh[0];
      int in = sh[1];
      long bf = 2L * out * in;
      long i8 = (long) out * in;
      long i4 = (long) out * in / 2;
      int copiesBf = (int) Math.max(1, pool / bf);
      try (DeviceBuffer wb = d.allocate(pool);
          DeviceBuffer sc = d.allocate(4L * out * (in / 32) * 8);
          DeviceBuffer xb = d.allocate(4L * maxRows * in);
          DeviceBuffer xh = d.allocate(2L * maxRows * in);
          DeviceBuffer xbf = d.allocate(2L * maxRows * in);
          DeviceBuffer yb = d.allocate(4L * maxRows * out);
          DeviceBuffer codes = d.allocate(W8a8Products.codeBytes(maxRows, in));
          DeviceBuffer tile = d.allocate(2L * Math.min((long) out * in, 16L << 20))) {
        k.fillUniform(wb.ptr(), CudaKernels.DT_BF16, pool / 2, 1, 0.01f);
        k.fillUniform(sc.ptr(), CudaKernels.DT_F32, (long) out * (in / 32) * 8, 2, 0.01f);
        k.fillUniform(xb.ptr(), CudaKernels.DT_F32, (long) maxRows * in, 3, 1f);
        k.fillUniform(xh.ptr(), CudaKernels.DT_F16, (long) maxRows * in, 3, 1f);
        k.fillUniform(xbf.ptr(), CudaKernels.DT_BF16, (long) maxRows * in, 3, 1f);
        long tileRows = Math.max(1, Math.min(out, (16L << 20) / in));
        for (int n : rowCounts) {
          List<GemvCase> cases = new ArrayList<>();
          cases.add(
              new GemvCase(
                  "bf16",
                  "cublasLt",
                  bf,
                  i ->
                      backend
                          .gemm()
                          .multiply(
                              CudaKernels.DT_BF16,
                              wb.ptr() + (i % copiesBf) * bf,
                              out,
                              in,
                              xbf.ptr(),
                              n,
                              yb.ptr(),
                              false)));
          // mgemv serves few rows only: past 8 it is not a candidate (QuantizedProducts)
          for (CudaKernels.MgVariant v : n <= 8 ? CudaKernels.MgVariant.values() : NO_VARIANTS) {
            cases.add(
                mgemvCase(
                    k,
                    "bf16",
                    CudaKernels.MgKind.BF16,
                    v,
                    2L * in,
                    bf,
                    pool,
                    wb,
                    sc,
                    xb,
                    yb,
                    out,
                    in,
                    n));
            cases.add(
                mgemvCase(
                    k, "int8", CudaKernels.MgKind.I8, v, in, i8, pool, wb, sc, xb, yb, out, in, n));
            cases.add(
                mgemvCase(
                    k,
                    "fp8-e4m3",
                    CudaKernels.MgKind.E4M3,
                    v,
                    in,
                    i8,
                    pool,
                    wb,
                    sc,
                    xb,
                    yb,
                    out,
                    in,
                    n));
            cases.add(
                mgemvCase(
                    k,
                    "int4-g128",
                    CudaKernels.MgKind.I4,
                    v,
                    in / 2,
                    i4,
                    pool,
                    wb,
                    sc,
                    xb,
                    yb,
                    out,
                    in,
                    n));
          }
          int copies8 = (int) Math.max(1, pool / i8);
          int copies4 = (int) Math.max(1, pool / i4);
          // the tiled layouts on the tensor cores (random codes: any bytes are a layout): INT4
          // in groups of 128, INT8 and FP8 with a scale per row
          for (CudaKernels.MqCodes mc :
              n <= CudaKernels.MQ_ROWS ? CudaKernels.MqCodes.values() : NO_MQ_CODES) {
            boolean four = mc == CudaKernels.MqCodes.I4;
            long bytes = four ? i4 : i8;
            int copies = four ? copies4 : copies8;
            for (CudaKernels.MqVariant v : CudaKernels.MqVariant.values()) {
              if (!v.takes(n)) {
                continue;
              }
              cases.add(
                  new GemvCase(
                      four ? "int4-g128" : mc == CudaKernels.MqCodes.I8 ? "int8" : "fp8-e4m3",
                      mc.prefix() + " " + v.name().toLowerCase(Locale.ROOT),
                      bytes,
                      i ->
                          k.mq(
                              mc,
                              v,
                              new CudaKernels.MgMatrix(
                                  wb.ptr() + (i % copies) * bytes,
                                  sc.ptr() + (i % 8) * 4L * out * (in / 32),
                                  0,
                                  yb.ptr(),
                                  out),
                              null,
                              null,
                              four ? 7 : CudaKernels.MQ_ROW_GROUP,
                              four ? in / 128 : 1,
                              xb.ptr(),
                              in,
                              n,
                              false,
                              0L,
                              0f,
                              false)));
            }
          }
          TileProduct tiles =
              (w0, decode) -> {
                for (long r0 = 0; r0 < out; r0 += tileRows) {
                  int m = (int) Math.min(tileRows, out - r0);
                  decode.tile(w0, (int) r0, m);
                  backend
                      .gemm()
                      .multiply(
                          CudaKernels.DT_F16,
                          tile.ptr(),
                          m,
                          in,
                          xh.ptr(),
                          n,
                          yb.ptr() + 4L * r0,
                          out,
                          false);
                }
              };
          cases.add(
              new GemvCase(
                  "int8",
                  "f16 tiles + cublasLt",
                  i8,
                  i ->
                      tiles.run(
                          wb.ptr() + (i % copies8) * i8,
                          (w0, r0, m) ->
                              k.dequant8Tile(
                                  w0,
                                  in,
                                  sc.ptr(),
                                  in,
                                  1,
                                  CudaKernels.QF_INT8,
                                  tile.ptr(),
                                  CudaKernels.DT_F16,
                                  r0,
                                  m,
                                  in))));
          cases.add(
              new GemvCase(
                  "int4-g128",
                  "f16 tiles + cublasLt",
                  i4,
                  i ->
                      tiles.run(
                          wb.ptr() + (i % copies4) * i4,
                          (w0, r0, m) ->
                              k.dequant4Tile(
                                  w0,
                                  in / 2,
                                  sc.ptr(),
                                  0,
                                  128,
                                  in / 128,
                                  tile.ptr(),
                                  CudaKernels.DT_F16,
                                  r0,
                                  m,
                                  in))));
          for (String label : new String[] {"int8", "fp8-e4m3"}) {
            int fmt = label.equals("int8") ? CudaKernels.QF_INT8 : CudaKernels.QF_E4M3;
            IntW8a8 run =
                i ->
                    w8a8.multiply(
                        fmt,
                        wb.ptr() + (i % copies8) * i8,
                        in,
                        sc.ptr(),
                        out,
                        in,
                        xb.ptr(),
                        n,
                        codes.ptr(),
                        codes.bytes(),
                        tile.ptr(),
                        tile.bytes(),
                        yb.ptr(),
                        false,
                        false);
            if (run.apply(0)) { // eager first: the plans are made outside the capture
              cases.add(new GemvCase(label, "w8a8", i8, run::apply));
            } else {
              System.out.printf(
                  Locale.ROOT, "| %dx%d | %d | %s | w8a8 refused |  |  |%n", out, in, n, label);
            }
          }
          for (GemvCase c : cases) {
            if (!only.isEmpty() && !only.contains(c.weights())) {
              continue;
            }
            int copies = (int) Math.max(1, pool / c.bytes());
            int reps = Math.max(20, Math.min(copies, 64));
            double us = graphMicros(d, c.launch(), reps, start, end);
            System.out.printf(
                Locale.ROOT,
                "| %dx%d | %d | %s | %s | %.1f | %.0f |%n",
                out,
                in,
                n,
                c.weights(),
                c.kernel(),
                us,
                c.bytes() / (us * 1e-6) / 1e9);
          }
        }
      }
    }
  }

  private static final CudaKernels.MgVariant[] NO_VARIANTS = {};
  private static final CudaKernels.MqCodes[] NO_MQ_CODES = {};

  /** A W8A8 product on weight copy {@code i}: whether it ran (false: cuBLASLt refused). */
  private interface IntW8a8 {
    boolean apply(int i);
  }

  private static GemvCase mgemvCase(
      CudaKernels k,
      String label,
      CudaKernels.MgKind kind,
      CudaKernels.MgVariant v,
      long ldw,
      long bytes,
      long pool,
      DeviceBuffer wb,
      DeviceBuffer sc,
      DeviceBuffer xb,
      DeviceBuffer yb,
      int out,
      int in,
      int n) {
    int copies = (int) Math.max(1, pool / bytes);
    boolean four = kind == CudaKernels.MgKind.I4;
    return new GemvCase(
        label,
        "mgemv " + v.name().toLowerCase(Locale.ROOT),
        bytes,
        i -> {
          for (int r0 = 0; r0 < n; r0 += CudaKernels.MGEMV_ROWS) {
            int m = Math.min(CudaKernels.MGEMV_ROWS, n - r0);
            k.mgemv(
                kind,
                v,
                wb.ptr() + (i % copies) * bytes,
                ldw,
                sc.ptr() + (i % 8) * 4L * out * (in / 32),
                0,
                four ? 128 : in,
                four ? in / 128 : 1,
                xb.ptr() + 4L * r0 * in,
                yb.ptr() + 4L * r0 * out,
                out,
                in,
                m,
                false);
          }
        });
  }

  /**
   * Microseconds per {@code launch} call: {@code reps} calls (on copies {@code 0..reps-1}) captured
   * into one graph, median of 5 timed graph launches after one warm-up.
   */
  static double graphMicros(
      CudaDevice d,
      java.util.function.IntConsumer launch,
      int reps,
      java.lang.foreign.MemorySegment start,
      java.lang.foreign.MemorySegment end) {
    var drv = d.driver();
    d.synchronize();
    drv.beginCapture(d.stream(), io.kvant.cuda.driver.CudaDriver.CAPTURE_THREAD_LOCAL);
    java.lang.foreign.MemorySegment graph;
    try {
      for (int i = 0; i < reps; i++) {
        launch.accept(i);
      }
    } finally {
      graph = drv.endCapture(d.stream());
    }
    java.lang.foreign.MemorySegment exec = drv.instantiate(graph);
    try {
      drv.launchGraph(exec, d.stream());
      d.synchronize();
      float[] t = new float[5];
      for (int i = 0; i < t.length; i++) {
        drv.record(start, d.stream());
        drv.launchGraph(exec, d.stream());
        drv.record(end, d.stream());
        t[i] = drv.elapsedMillis(start, end);
      }
      java.util.Arrays.sort(t);
      return t[t.length / 2] * 1e3 / reps;
    } finally {
      drv.destroyGraphExec(exec);
      drv.destroyGraph(graph);
    }
  }

  static LlamaConfig shape(String name) {
    return switch (name) {
      case "llama-3.2-1b" ->
          new LlamaConfig(
              2048, 8192, 16, 32, 8, 128256, 4096, 500000f, 1e-5f, RopeStyle.HALF_SPLIT);
      case "llama-3-8b" ->
          new LlamaConfig(
              4096, 14336, 32, 32, 8, 128256, 4096, 500000f, 1e-5f, RopeStyle.HALF_SPLIT);
      default -> throw new IllegalArgumentException("unknown shape " + name);
    };
  }

  static void decode(CudaBackend backend, String[] args) {
    String name = flagText(args, "--shape", "llama-3.2-1b");
    LlamaConfig c = shape(name);
    int prompt = (int) flag(args, "--prompt", 128);
    int steps = (int) flag(args, "--steps", 128);
    List<Integer> batches = new ArrayList<>();
    for (String b : flagText(args, "--batch", "1,16,64,256").split(",")) {
      batches.add(Integer.parseInt(b.trim()));
    }
    CudaDevice d = backend.device();
    double copyTbs = bandwidth(d, 2);
    boolean tied = name.equals("llama-3.2-1b");
    String weights = flagText(args, "--weights", "bf16");
    DeviceModel model;
    long stepBytes;
    if (weights.equals("bf16")) {
      model = SyntheticModels.create(d, backend.kernels(), c, CudaKernels.DT_BF16, tied, 11);
      stepBytes = SyntheticModels.weightBytesPerStep(c, 2);
    } else {
      SyntheticModels.QuantKind kind =
          SyntheticModels.QuantKind.valueOf(weights.toUpperCase(Locale.ROOT).replace('-', '_'));
      // codes: the tiled layout (mq4 / mq8, the default) or the row-major one (mgemv, and what
      // W8A8 reads: the default with --w8a8 other than off)
      boolean w8a8Asked = !flagText(args, "--w8a8", "off").equals("off");
      String layout = flagText(args, "--layout", w8a8Asked ? "rows" : "tiled");
      if (!layout.equals("tiled") && !layout.equals("rows")) {
        throw new IllegalArgumentException("--layout tiled|rows, got " + layout);
      }
      model =
          SyntheticModels.createQuantized(
              d, backend.kernels(), c, kind, 11, layout.equals("tiled"));
      stepBytes = SyntheticModels.weightBytesPerStep(c, kind);
    }
    KvCacheType kvType =
        switch (flagText(args, "--kv", "f16")) {
          case "f16" -> KvCacheType.F16;
          case "int8" -> KvCacheType.INT8;
          case "fp8" -> KvCacheType.FP8_E4M3;
          case "f32" -> KvCacheType.F32;
          default -> throw new IllegalArgumentException("--kv f16|int8|fp8|f32");
        };
    // INT8/FP8 encodings (default: the device's default for the type), each a column value
    List<KvEncoding> encodings = new ArrayList<>();
    for (String e :
        flagText(args, "--kv-encoding", backend.defaultKvEncoding(kvType).optionName())
            .split(",")) {
      encodings.add(KvEncoding.parse(e));
    }
    String graphs = flagText(args, "--graphs", "on");
    List<Boolean> modes =
        switch (graphs) {
          case "on" -> List.of(true);
          case "off" -> List.of(false);
          case "both" -> List.of(false, true);
          default -> throw new IllegalArgumentException("--graphs on|off|both, got " + graphs);
        };
    String fuse = flagText(args, "--fuse", DecodeFusion.DEFAULT.name().toLowerCase(Locale.ROOT));
    List<DecodeFusion> fuses = new ArrayList<>();
    for (String f : fuse.split(",")) {
      fuses.add(DecodeFusion.valueOf(f.trim().toUpperCase(Locale.ROOT).replace('-', '_')));
    }
    String pdl = flagText(args, "--pdl", backend.kernels().overlappedLaunch() ? "on" : "off");
    List<Boolean> pdls =
        switch (pdl) {
          case "on" -> List.of(true);
          case "off" -> List.of(false);
          case "both" -> List.of(false, true);
          default -> throw new IllegalArgumentException("--pdl on|off|both, got " + pdl);
        };
    List<AttentionKernel> attentions = new ArrayList<>();
    for (String a :
        flagText(args, "--attention", AttentionKernel.DEFAULT.name().toLowerCase(Locale.ROOT))
            .split(",")) {
      attentions.add(AttentionKernel.valueOf(a.trim().toUpperCase(Locale.ROOT)));
    }
    LaunchProfile profile = null;
    if (hasFlag(args, "--profile")) {
      if (modes.contains(true)) {
        throw new IllegalArgumentException(
            "--profile times live launches: use it with --graphs off");
      }
      profile = new LaunchProfile(d);
    }
    List<MgemvSplits> splits = new ArrayList<>();
    for (String a :
        flagText(
                args,
                "--splits",
                MgemvSplits.DEFAULT.name().toLowerCase(Locale.ROOT).replace('_', '-'))
            .split(",")) {
      splits.add(MgemvSplits.valueOf(a.trim().toUpperCase(Locale.ROOT).replace('-', '_')));
    }
    DeviceSampling sampling = sampling(flagText(args, "--sample", "greedy"));
    // W8A8 from this many rows on (INT8 / FP8 E4M3 weights), "off" for the default paths
    List<Integer> w8a8s = new ArrayList<>();
    for (String a : flagText(args, "--w8a8", "off").split(",")) {
      w8a8s.add(a.trim().equals("off") ? 0 : Integer.parseInt(a.trim()));
    }
    // one forward pass per (graphs, fused, overlapped launch, attention, splits, w8a8) mode, same
    // weights
    Map<String, CudaTransformer> passes = new LinkedHashMap<>();
    Map<String, Boolean> passPdl = new LinkedHashMap<>();
    for (boolean g : modes) {
      for (DecodeFusion f : fuses) {
        for (boolean o : pdls) {
          for (AttentionKernel ta : attentions) {
            for (MgemvSplits sp : splits) {
              for (int w8 : w8a8s) {
                String key =
                    (g ? "on" : "off")
                        + " | "
                        + f.name().toLowerCase(Locale.ROOT)
                        + " | "
                        + (o ? "on" : "off")
                        + " | "
                        + ta.name().toLowerCase(Locale.ROOT)
                        + " | "
                        + sp.name().toLowerCase(Locale.ROOT).replace('_', '-')
                        + " | "
                        + (w8 == 0 ? "off" : ">= " + w8);
                CudaTransformer t =
                    new CudaTransformer(d, backend.kernels(), backend.gemm(), model, g, f);
                t.setAttention(ta);
                t.setMgemvSplits(sp);
                t.setW8a8MinRows(w8);
                passes.put(key, t);
                passPdl.put(key, o);
              }
            }
          }
        }
      }
    }
    // What the KV type buys: tokens per GiB, and the sequences of 2,048 tokens that the device's
    // free memory (after the weights and this forward pass's scratch) holds, less 4 GiB kept for
    // prefill activations and the tile.
    KvGeometry geometry = new KvGeometry(c.layers(), c.kvHeads(), c.headSize());
    long perToken = geometry.bytesPerToken(kvType);
    long free = d.memoryInfo()[0] - (4L << 30);
    System.out.printf(
        Locale.ROOT,
        "kv %s: %d bytes per token, %.0f tokens per GiB; %.1f GiB free after weights: %d sequences"
            + " of 2,048 tokens%n",
        kvType,
        perToken,
        (double) (1L << 30) / perToken,
        free / (double) (1L << 30),
        free / (2048L * perToken));
    System.out.printf(
        Locale.ROOT,
        "decode %s %s (synthetic, weights %.2f GB read per step), %s KV, prompt %d, %d steps,"
            + " %s%n",
        name,
        weights,
        stepBytes / 1e9,
        kvType,
        prompt,
        steps,
        sampling.temperature() > 0
            ? "sampled at temperature "
                + sampling.temperature()
                + ", top-p "
                + sampling.topP()
                + ", top-k "
                + sampling.topK()
            : "greedy");
    System.out.println(
        "| batch | graphs | decode fusion | overlapped launch | attention | mgemv splits |"
            + " w8a8 rows | kv encoding |"
            + " prefill tok/s | decode tok/s | ms/step | weight-read TB/s | share of copy bw |");
    System.out.println(
        "| ---: | --- | --- | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |");
    // Each pass once, untimed, before the table: a pass's first prefill compiles its kernels and
    // picks cuBLASLt's algorithms, which made the first row's prefill figure a cold one.
    for (var e : passes.entrySet()) {
      backend.kernels().setOverlappedLaunch(passPdl.get(e.getKey()));
      run(
          backend,
          c,
          e.getValue(),
          null,
          kvType,
          encodings.get(0),
          batches.get(0),
          prompt,
          1,
          stepBytes,
          copyTbs,
          null,
          sampling);
    }
    for (int batch : batches) {
      for (var e : passes.entrySet()) {
        for (KvEncoding enc : encodings) {
          // graphs are captured on a pass's first step, with the launch mode set here
          backend.kernels().setOverlappedLaunch(passPdl.get(e.getKey()));
          run(
              backend,
              c,
              e.getValue(),
              e.getKey() + " | " + enc.optionName(),
              kvType,
              enc,
              batch,
              prompt,
              steps,
              stepBytes,
              copyTbs,
              profile,
              sampling);
        }
      }
    }
    for (var e : passes.entrySet()) {
      CudaTransformer t = e.getValue();
      System.out.printf(
          Locale.ROOT,
          "graphs %s: %d graph launches%s%n",
          e.getKey(),
          t.graphLaunches(),
          t.graphsOffReason() == null ? "" : ", off: " + t.graphsOffReason());
    }
    passes.values().forEach(CudaTransformer::close);
  }

  /**
   * Statistics for a centered encoding on a synthetic model (which has no text to calibrate on):
   * key means drawn small at random and an identity query moment. Enough to time the encoding,
   * whose work does not depend on the values (every key is centered, every candidate weighed).
   */
  private static KvScales syntheticCentering(LlamaConfig c, KvGeometry g) {
    int n = g.layers() * g.kvDim();
    int hs = g.headSize();
    float[] ones = new float[n];
    java.util.Arrays.fill(ones, 1f);
    float[] mean = new float[n];
    SplittableRandom r = new SplittableRandom(7);
    for (int i = 0; i < n; i++) {
      mean[i] = (float) (r.nextDouble() - 0.5) * 0.2f;
    }
    float[] moment = new float[n * hs];
    for (int h = 0; h < g.layers() * g.kvHeads(); h++) {
      for (int i = 0; i < hs; i++) {
        moment[(h * hs + i) * hs + i] = 1f;
      }
    }
    return new KvScales(
        g, false, ones, ones, new KeyRope(c.ropeTheta(), c.ropeStyle()), mean, moment);
  }

  /**
   * {@code --sample}: {@code greedy}, or {@code T:P:K[:M]} (temperature, top-p, top-k, and
   * optionally min-p), e.g. {@code 0.8:0.9:0} or {@code 0.8:1:0:0.05}; the seed is set per step
   * ({@link #stepRules}).
   */
  static DeviceSampling sampling(String spec) {
    if (spec.equals("greedy")) {
      return DeviceSampling.greedy();
    }
    String[] f = spec.split(":");
    try {
      if (f.length == 3 || f.length == 4) {
        DeviceSampling d =
            new DeviceSampling(
                Float.parseFloat(f[0]),
                Integer.parseInt(f[2]),
                Float.parseFloat(f[1]),
                f.length == 4 ? Float.parseFloat(f[3]) : 0f,
                0L);
        if (d.temperature() > 0 && d.topK() >= 0 && d.topP() <= 1f) {
          return d;
        }
      }
    } catch (IllegalArgumentException e) {
      // reported below with the accepted forms
    }
    throw new IllegalArgumentException(
        "--sample: greedy or TEMPERATURE:TOP_P:TOP_K[:MIN_P] (temperature > 0, top-p in (0, 1],"
            + " top-k >= 0, min-p in [0, 1]), got '"
            + spec
            + "'");
  }

  /** The rows' rules for decode step {@code step}: {@code greedy} as is, else fresh seeds. */
  static DeviceSampling[] stepRules(DeviceSampling rule, DeviceSampling[] greedy, int step) {
    if (!(rule.temperature() > 0)) {
      return greedy;
    }
    DeviceSampling[] rules = new DeviceSampling[greedy.length];
    for (int s = 0; s < rules.length; s++) {
      rules[s] =
          new DeviceSampling(
              rule.temperature(),
              rule.topK(),
              rule.topP(),
              rule.minP(),
              (long) step * rules.length + s + 1);
    }
    return rules;
  }

  /** One table row: prefill, then timed decode steps; {@code mode} null runs it untimed, silent. */
  private static void run(
      CudaBackend backend,
      LlamaConfig c,
      CudaTransformer t,
      String mode,
      KvCacheType kvType,
      KvEncoding encoding,
      int batch,
      int prompt,
      int steps,
      long stepBytes,
      double copyTbs,
      LaunchProfile profile,
      DeviceSampling sampling) {
    {
      KvGeometry g = new KvGeometry(c.layers(), c.kvHeads(), c.headSize());
      // a quarter more: room for the per-block scales of the per-channel encodings
      long budget = (long) batch * (prompt + steps + 32) * g.bytesPerToken(kvType) * 5 / 4;
      KvCacheManager kv =
          new KvCacheManager(
              g,
              new KvCacheConfig(kvType, 16, budget, EvictionPolicyKind.TINY_LFU, false),
              encoding.centersKeys()
                  ? backend.kvStorage(encoding, syntheticCentering(c, g))
                  : backend.kvStorage(encoding));
      SplittableRandom rnd = new SplittableRandom(batch);
      int[] seqs = new int[batch];
      int[][] prompts = new int[batch][];
      for (int s = 0; s < batch; s++) {
        prompts[s] = rnd.ints(prompt, 0, c.vocabSize()).toArray();
        seqs[s] = kv.open(kv.findCachedPrefix(prompts[s], prompt, "b" + s), prompt);
      }
      // Prefill in chunks of up to 2048 rows.
      long p0 = System.nanoTime();
      int perChunk = Math.max(1, 2048 / prompt);
      int[] last = new int[batch];
      for (int s0 = 0; s0 < batch; s0 += perChunk) {
        int s1 = Math.min(batch, s0 + perChunk);
        int rows = (s1 - s0) * prompt;
        int[] tok = new int[rows];
        int[] pos = new int[rows];
        int[] sq = new int[rows];
        int[] lr = new int[s1 - s0];
        int r = 0;
        for (int s = s0; s < s1; s++) {
          for (int i = 0; i < prompt; i++, r++) {
            tok[r] = prompts[s][i];
            pos[r] = i;
            sq[r] = seqs[s];
          }
          lr[s - s0] = r - 1;
        }
        DeviceSampling[] greedy = new DeviceSampling[s1 - s0];
        java.util.Arrays.fill(greedy, DeviceSampling.greedy());
        int[] ids = t.forwardAndSample(new Batch(tok, pos, sq, lr), kv.store(), greedy);
        System.arraycopy(ids, 0, last, s0, ids.length);
      }
      long p1 = System.nanoTime();
      // each decode step's rule: greedy, or the --sample rule with a fresh seed per row and step
      DeviceSampling[] greedy = new DeviceSampling[batch];
      java.util.Arrays.fill(greedy, DeviceSampling.greedy());
      int[] pos = new int[batch];
      int[] all = new int[batch];
      for (int s = 0; s < batch; s++) {
        all[s] = s;
      }
      int warm = 3;
      long d0 = 0;
      for (int step = 0; step < steps + warm; step++) {
        if (step == warm) {
          d0 = System.nanoTime();
        }
        for (int s = 0; s < batch; s++) {
          pos[s] = prompt + step;
          kv.grow(seqs[s], prompt + step + 1);
        }
        last =
            t.forwardAndSample(
                new Batch(last.clone(), pos.clone(), seqs, all),
                kv.store(),
                stepRules(sampling, greedy, step));
      }
      long d1 = System.nanoTime();
      Map<String, double[]> profiled = null;
      if (profile != null) {
        // three more steps, each launch between two events (graphs off: launches are live)
        backend.kernels().setProfile(profile);
        for (int step = steps + warm; step < steps + warm + PROFILED_STEPS; step++) {
          for (int s = 0; s < batch; s++) {
            pos[s] = prompt + step;
            kv.grow(seqs[s], prompt + step + 1);
          }
          last =
              t.forwardAndSample(
                  new Batch(last.clone(), pos.clone(), seqs, all),
                  kv.store(),
                  stepRules(sampling, greedy, step));
        }
        backend.kernels().setProfile(null);
        profiled = profile.collect();
      }
      double stepSec = (d1 - d0) * 1e-9 / steps;
      double tbs = stepBytes / stepSec / 1e12;
      if (mode == null) {
        ((io.kvant.cuda.model.CudaKvPool) kv.store()).close();
        return;
      }
      System.out.printf(
          Locale.ROOT,
          "| %d | %s | %.0f | %.1f | %.3f | %.2f | %.0f%% |%n",
          batch,
          mode,
          batch * (double) prompt / ((p1 - p0) * 1e-9),
          batch / stepSec,
          stepSec * 1e3,
          tbs,
          100 * tbs / copyTbs);
      if (profiled != null) {
        printProfile(mode, batch, profiled);
      }
      ((io.kvant.cuda.model.CudaKvPool) kv.store()).close();
    }
  }

  /** Decode steps timed launch by launch under {@code --profile}. */
  private static final int PROFILED_STEPS = 3;

  /** Microseconds per step by kernel (name and grid), largest first, with their share. */
  private static void printProfile(String mode, int batch, Map<String, double[]> byKernel) {
    double total = byKernel.values().stream().mapToDouble(v -> v[0]).sum();
    System.out.printf(
        Locale.ROOT,
        "profile, batch %d, %s: %.1f us of kernels per step (events around each launch)%n",
        batch,
        mode,
        total / PROFILED_STEPS);
    System.out.println("| kernel (grid) | us per step | launches per step | share |");
    System.out.println("| --- | ---: | ---: | ---: |");
    byKernel.entrySet().stream()
        .sorted((a, b) -> Double.compare(b.getValue()[0], a.getValue()[0]))
        .forEach(
            e ->
                System.out.printf(
                    Locale.ROOT,
                    "| %s | %.1f | %.0f | %.1f%% |%n",
                    e.getKey(),
                    e.getValue()[0] / PROFILED_STEPS,
                    e.getValue()[1] / PROFILED_STEPS,
                    100 * e.getValue()[0] / total));
  }
}
