package io.kvant.cuda.bench;

import io.kvant.cuda.CudaBackend;
import io.kvant.cuda.device.CudaDevice;
import io.kvant.cuda.device.CudaKernels;
import io.kvant.cuda.device.CudaOptions;
import io.kvant.cuda.device.DeviceBuffer;
import io.kvant.cuda.model.CudaTransformer;
import io.kvant.cuda.model.DeviceModel;
import io.kvant.cuda.model.SyntheticModels;
import io.kvant.engine.forward.Batch;
import io.kvant.engine.forward.DeviceSampling;
import io.kvant.engine.kv.EvictionPolicyKind;
import io.kvant.engine.kv.KvCacheConfig;
import io.kvant.engine.kv.KvCacheManager;
import io.kvant.engine.kv.KvCacheType;
import io.kvant.engine.kv.KvGeometry;
import io.kvant.engine.model.LlamaConfig;
import io.kvant.engine.model.RopeStyle;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * GPU benchmarks: {@code bandwidth} (device-to-device copy, the memory ceiling) and {@code decode}
 * (aggregate decode tokens/s of a synthetic Llama-shaped BF16 model at several batch sizes, through
 * the real {@link CudaTransformer}, KV manager and device sampling).
 *
 * <pre>
 * bandwidth [--gib 4]
 * decode --shape llama-3.2-1b|llama-3-8b [--batch 1,16,64,256] [--prompt 128] [--steps 128]
 *        [--weights bf16|int8|fp8-e4m3|int4-g128|int4-g32] [--graphs on|off|both]
 * </pre>
 *
 * <p>{@code --graphs both} measures every batch with and without CUDA graphs in one run, so the two
 * columns compare as a ratio on the same machine state.
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
        case "gemv" -> gemv(backend);
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

  private static String flagText(String[] args, String name, String def) {
    for (int i = 0; i + 1 < args.length; i++) {
      if (args[i].equals(name)) {
        return args[i + 1];
      }
    }
    return def;
  }

  /** Device-to-device copy bandwidth, read + write bytes counted, median of 20. */
  static double bandwidth(CudaDevice d, int gib) {
    long bytes = (long) gib << 30;
    try (DeviceBuffer a = d.allocate(bytes);
        DeviceBuffer b = d.allocate(bytes)) {
      d.driver().memset(a.ptr(), 1, bytes);
      d.synchronize();
      double[] tbs = new double[20];
      for (int i = 0; i < tbs.length + 3; i++) {
        long t0 = System.nanoTime();
        d.driver().copyDeviceToDevice(b.ptr(), a.ptr(), bytes);
        d.driver().synchronize();
        long t1 = System.nanoTime();
        if (i >= 3) {
          tbs[i - 3] = 2.0 * bytes / ((t1 - t0) * 1e-9) / 1e12;
        }
      }
      java.util.Arrays.sort(tbs);
      double med = tbs[tbs.length / 2];
      System.out.printf(
          Locale.ROOT,
          "bandwidth: device-to-device copy of %d GiB: %.2f TB/s (read + write)%n",
          gib,
          med);
      return med;
    }
  }

  /**
   * The decode products alone: every product kernel on 8B-shaped matrices at 1, 4 and 8 rows, timed
   * with events (median of 30 launches), as weight bytes read per second.
   */
  static void gemv(CudaBackend backend) {
    CudaDevice d = backend.device();
    CudaKernels k = backend.kernels();
    int[][] shapes = {{4096, 4096}, {14336, 4096}, {4096, 14336}};
    System.out.println("| out x in | rows | weights | kernel | us | weight GB/s |");
    System.out.println("| --- | ---: | --- | --- | ---: | ---: |");
    var start = d.driver().createEvent();
    var end = d.driver().createEvent();
    for (int[] sh : shapes) {
      int out = sh[0];
      int in = sh[1];
      try (DeviceBuffer wb = d.allocate(2L * out * in);
          DeviceBuffer sc = d.allocate(4L * out * (in / 32));
          DeviceBuffer xb = d.allocate(4L * 8 * in);
          DeviceBuffer xh = d.allocate(2L * 8 * in);
          DeviceBuffer yb = d.allocate(4L * 8 * out);
          DeviceBuffer tile = d.allocate(2L * out * in)) {
        k.fillUniform(wb.ptr(), CudaKernels.DT_BF16, (long) out * in, 1, 0.01f);
        k.fillUniform(sc.ptr(), CudaKernels.DT_F32, (long) out * (in / 32), 2, 0.01f);
        k.fillUniform(xb.ptr(), CudaKernels.DT_F32, 8L * in, 3, 1f);
        k.fillUniform(xh.ptr(), CudaKernels.DT_BF16, 8L * in, 3, 1f);
        for (int n : new int[] {1, 2, 4, 8}) {
          List<Object[]> cases = new ArrayList<>();
          long bf = 2L * out * in;
          long i8 = (long) out * in;
          long i4 = (long) out * in / 2;
          cases.add(
              new Object[] {
                "bf16",
                "cublasLt",
                bf,
                (Runnable)
                    () ->
                        backend
                            .gemm()
                            .multiply(
                                CudaKernels.DT_BF16,
                                wb.ptr(),
                                out,
                                in,
                                xh.ptr(),
                                n,
                                yb.ptr(),
                                false)
              });
          cases.add(
              new Object[] {
                "bf16",
                "wgemv",
                bf,
                (Runnable)
                    () ->
                        k.wgemv(
                            wb.ptr(),
                            2L * in,
                            0,
                            0,
                            0,
                            0,
                            0,
                            CudaKernels.WG_BF16,
                            xb.ptr(),
                            yb.ptr(),
                            out,
                            in,
                            n,
                            false)
              });
          cases.add(
              new Object[] {
                "int8",
                "qgemv8",
                i8,
                (Runnable)
                    () ->
                        k.qgemv8(
                            wb.ptr(),
                            in,
                            sc.ptr(),
                            in,
                            1,
                            CudaKernels.QF_INT8,
                            xb.ptr(),
                            yb.ptr(),
                            out,
                            in,
                            n,
                            false)
              });
          cases.add(
              new Object[] {
                "int8",
                "wgemv",
                i8,
                (Runnable)
                    () ->
                        k.wgemv(
                            wb.ptr(),
                            in,
                            sc.ptr(),
                            0,
                            in,
                            1,
                            CudaKernels.QF_INT8,
                            CudaKernels.WG_CODES8,
                            xb.ptr(),
                            yb.ptr(),
                            out,
                            in,
                            n,
                            false)
              });
          cases.add(
              new Object[] {
                "int4-g128",
                "qgemv4",
                i4,
                (Runnable)
                    () ->
                        k.qgemv4(
                            wb.ptr(), in / 2, sc.ptr(), 0, 128, in / 128, xb.ptr(), yb.ptr(), out,
                            in, n, false)
              });
          cases.add(
              new Object[] {
                "int4-g128",
                "wgemv",
                i4,
                (Runnable)
                    () ->
                        k.wgemv(
                            wb.ptr(),
                            in / 2,
                            sc.ptr(),
                            0,
                            128,
                            in / 128,
                            0,
                            CudaKernels.WG_CODES4,
                            xb.ptr(),
                            yb.ptr(),
                            out,
                            in,
                            n,
                            false)
              });
          cases.add(
              new Object[] {
                "int8",
                "dequant+cublasLt",
                i8,
                (Runnable)
                    () -> {
                      k.dequant8Bf16(
                          wb.ptr(),
                          in,
                          sc.ptr(),
                          in,
                          1,
                          CudaKernels.QF_INT8,
                          tile.ptr(),
                          0,
                          out,
                          in);
                      backend
                          .gemm()
                          .multiply(
                              CudaKernels.DT_BF16,
                              tile.ptr(),
                              out,
                              in,
                              xh.ptr(),
                              n,
                              yb.ptr(),
                              false);
                    }
              });
          cases.add(
              new Object[] {
                "int4-g128",
                "dequant+cublasLt",
                i4,
                (Runnable)
                    () -> {
                      k.dequant4Bf16(
                          wb.ptr(), in / 2, sc.ptr(), 0, 128, in / 128, tile.ptr(), 0, out, in);
                      backend
                          .gemm()
                          .multiply(
                              CudaKernels.DT_BF16,
                              tile.ptr(),
                              out,
                              in,
                              xh.ptr(),
                              n,
                              yb.ptr(),
                              false);
                    }
              });
          for (Object[] c : cases) {
            Runnable r = (Runnable) c[3];
            if (n > CudaKernels.QGEMV_ROWS && c[1].toString().startsWith("q")) {
              continue;
            }
            r.run();
            float[] t = new float[30];
            for (int i = 0; i < t.length; i++) {
              d.driver().record(start, d.stream());
              r.run();
              d.driver().record(end, d.stream());
              t[i] = d.driver().elapsedMillis(start, end);
            }
            java.util.Arrays.sort(t);
            double us = t[t.length / 2] * 1e3;
            System.out.printf(
                Locale.ROOT,
                "| %dx%d | %d | %s | %s | %.1f | %.0f |%n",
                out,
                in,
                n,
                c[0],
                c[1],
                us,
                (long) c[2] / (us * 1e-6) / 1e9);
          }
        }
      }
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
      model = SyntheticModels.createQuantized(d, backend.kernels(), c, kind, 11);
      stepBytes = SyntheticModels.weightBytesPerStep(c, kind);
    }
    String graphs = flagText(args, "--graphs", "on");
    List<Boolean> modes =
        switch (graphs) {
          case "on" -> List.of(true);
          case "off" -> List.of(false);
          case "both" -> List.of(false, true);
          default -> throw new IllegalArgumentException("--graphs on|off|both, got " + graphs);
        };
    CudaTransformer eager = new CudaTransformer(d, backend.kernels(), backend.gemm(), model, false);
    CudaTransformer graphed =
        new CudaTransformer(d, backend.kernels(), backend.gemm(), model, true);
    System.out.printf(
        Locale.ROOT,
        "decode %s %s (synthetic, weights %.2f GB read per step), F16 KV, prompt %d, %d steps%n",
        name,
        weights,
        stepBytes / 1e9,
        prompt,
        steps);
    System.out.println(
        "| batch | graphs | prefill tok/s | decode tok/s | ms/step | weight-read TB/s | share of"
            + " copy bw |");
    System.out.println("| ---: | --- | ---: | ---: | ---: | ---: | ---: |");
    for (int batch : batches) {
      for (boolean mode : modes) {
        run(backend, c, mode ? graphed : eager, mode, batch, prompt, steps, stepBytes, copyTbs);
      }
    }
    eager.close();
    graphed.close();
  }

  private static void run(
      CudaBackend backend,
      LlamaConfig c,
      CudaTransformer t,
      boolean graphs,
      int batch,
      int prompt,
      int steps,
      long stepBytes,
      double copyTbs) {
    {
      KvGeometry g = new KvGeometry(c.layers(), c.kvHeads(), c.headSize());
      long budget = (long) batch * (prompt + steps + 32) * g.bytesPerToken(KvCacheType.F16);
      KvCacheManager kv =
          new KvCacheManager(
              g,
              new KvCacheConfig(KvCacheType.F16, 16, budget, EvictionPolicyKind.TINY_LFU, false),
              backend.kvStorage());
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
            t.forwardAndSample(new Batch(last.clone(), pos.clone(), seqs, all), kv.store(), greedy);
      }
      long d1 = System.nanoTime();
      double stepSec = (d1 - d0) * 1e-9 / steps;
      double tbs = stepBytes / stepSec / 1e12;
      System.out.printf(
          Locale.ROOT,
          "| %d | %s | %.0f | %.1f | %.3f | %.2f | %.0f%% |%n",
          batch,
          graphs ? "on" : "off",
          batch * (double) prompt / ((p1 - p0) * 1e-9),
          batch / stepSec,
          stepSec * 1e3,
          tbs,
          100 * tbs / copyTbs);
      ((io.kvant.cuda.model.CudaKvPool) kv.store()).close();
    }
  }
}
