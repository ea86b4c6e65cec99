package io.kvant.cuda.device;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import io.kvant.cuda.driver.CudaDriver;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * The kernels of {@code kvant.cu}, compiled for the device (or read from the kernel cache) and
 * launched with typed arguments. Each method documents the kernel's contract; the source has the
 * layouts. A failed launch throws {@link io.kvant.cuda.driver.CudaException} naming the kernel.
 *
 * <p>Not thread-safe: the launch argument buffer is reused, so one thread (the engine loop, or a
 * test) launches at a time. Launches are asynchronous on the device's stream.
 */
public final class CudaKernels {
  /** Storage type codes shared with the kernels. */
  public static final int DT_F32 = 0;

  public static final int DT_F16 = 1;
  public static final int DT_BF16 = 2;

  static final String SOURCE_RESOURCE = "/io/kvant/cuda/kernels/kvant.cu";
  private static final int ELEMENTWISE_THREADS = 256;

  private final CudaDevice device;
  private final MemorySegment embed;
  private final MemorySegment rmsnorm;
  private final MemorySegment castF32;
  private final MemorySegment addBias;
  private final MemorySegment rope;
  private final MemorySegment kvAppend;
  private final MemorySegment attention;
  private final MemorySegment attentionWide;
  private final MemorySegment attentionTiled;
  private final MemorySegment attentionMerge;
  private final MemorySegment attentionDecode;
  // attention_decode's and attention_rows' split arrival counts, zero between launches (the last
  // block of each (row, kv head) resets its own)
  private final DeviceBuffer attentionCounters;
  // attention_rows' kernels: [head size 32, 64, 128][kv type DT_F16 .. DT_KV_E4M3], then with keys
  // per channel [head size][DT_KV_I8, DT_KV_E4M3]
  private final MemorySegment[][] attentionRows = new MemorySegment[3][4];
  private final MemorySegment[][] attentionRowsKeyChannels = new MemorySegment[3][2];
  private final MemorySegment[][] attentionRowsPerHead = new MemorySegment[3][4];
  private final MemorySegment swiglu;
  private final MemorySegment addInplace;
  private final MemorySegment sample;
  private final MemorySegment fillUniform;
  private final MemorySegment qgemv8;
  private final MemorySegment qgemv4;
  private final MemorySegment dequant8;
  private final MemorySegment dequant4;
  private final MemorySegment fillBytes;
  private final MemorySegment dequant8Tile;
  private final MemorySegment dequant4Tile;
  private final MemorySegment ropeKvAppend;
  private final MemorySegment kvWeightedParts;

  /** The dynamic shared memory a kv_weighted_parts block may take on this device. */
  private final int weightedPartsLimit;

  private final MemorySegment w8a8Quantize;
  private final MemorySegment w8a8Epilogue;
  private final MemorySegment w8a8SwigluQuantize;
  // [codes][variant][one, two or four mmas per fragment][form: plain, norm, swiglu, swiglu +
  // norm]; four only for the variants that take more than 16 rows (null elsewhere)
  private final MemorySegment[][][][] mq =
      new MemorySegment[MqCodes.values().length][MqVariant.values().length][3][4];
  private final MemorySegment dequantTiled;
  // [form: plain, norm, swiglu, swiglu + norm]
  private final MemorySegment[] mqp = new MemorySegment[4];
  private final MemorySegment mqpRepack;
  // [codes], looked up by ordinal
  private final MemorySegment[] mqw = new MemorySegment[MqCodes.values().length];
  // mqw's split-K arrival counts, zero between launches (each launch's last block resets its own)
  private final DeviceBuffer mqwCounters;
  // [kind], looked up by ordinal
  private final MemorySegment[][] mgemvFused =
      new MemorySegment[MgKind.values().length][MgVariant.values().length];
  // (kind, split) -> blocks of mgemv_fused one wave holds
  private final Map<Long, Integer> fusedWave = new HashMap<>();
  private LaunchProfile profile;
  // [kind][variant], looked up by ordinal: a launch on the decode path builds no name
  private final MemorySegment[][] mgemv =
      new MemorySegment[MgKind.values().length][MgVariant.values().length];
  private final Args args = new Args();
  private final MemorySegment launchConfig =
      Arena.ofAuto().allocate(CudaDriver.LAUNCH_CONFIG_BYTES, 8);
  private final int gridCap;
  private boolean overlapped;

  public CudaKernels(CudaDevice device) {
    this.device = device;
    MemorySegment module = device.loadModule(device.compiler().cubin(source(), "kvant.cu"));
    var d = device.driver();
    embed = d.function(module, "embed");
    rmsnorm = d.function(module, "rmsnorm");
    castF32 = d.function(module, "cast_f32");
    addBias = d.function(module, "add_bias");
    rope = d.function(module, "rope");
    kvAppend = d.function(module, "kv_append");
    attention = d.function(module, "attention");
    attentionWide = d.function(module, "attention_wide");
    attentionTiled = d.function(module, "attention_tiled");
    attentionMerge = d.function(module, "attention_merge");
    // K/V tiles for head sizes up to 256 take more than the default 48 KiB
    d.setFunctionAttribute(
        attentionTiled,
        CudaDriver.FUNC_ATTR_MAX_DYNAMIC_SHARED,
        Math.min(tiledSharedBytes(256), device.sharedPerBlockOptIn()));
    attentionDecode = d.function(module, "attention_decode");
    d.setFunctionAttribute(
        attentionDecode,
        CudaDriver.FUNC_ATTR_MAX_DYNAMIC_SHARED,
        Math.min(tiledSharedBytes(256), device.sharedPerBlockOptIn()));
    String[] rowsKv = {"f16", "bf16", "i8", "e4m3"};
    for (int h = 0; h < attentionRows.length; h++) {
      for (int t = 0; t < rowsKv.length; t++) {
        attentionRows[h][t] = d.function(module, "attention_rows_h" + (32 << h) + "_" + rowsKv[t]);
      }
      for (int t = 0; t < 2; t++) {
        attentionRowsKeyChannels[h][t] =
            d.function(module, "attention_rows_h" + (32 << h) + "_" + rowsKv[t + 2] + "_kc");
      }
      for (int t = 0; t < rowsKv.length; t++) {
        attentionRowsPerHead[h][t] =
            d.function(module, "attention_rows_h" + (32 << h) + "_" + rowsKv[t] + "_heads");
      }
    }
    swiglu = d.function(module, "swiglu");
    addInplace = d.function(module, "add_inplace");
    sample = d.function(module, "sample");
    fillUniform = d.function(module, "fill_uniform");
    qgemv8 = d.function(module, "qgemv8");
    qgemv4 = d.function(module, "qgemv4");
    dequant8 = d.function(module, "dequant8");
    dequant4 = d.function(module, "dequant4");
    fillBytes = d.function(module, "fill_bytes");
    dequant8Tile = d.function(module, "dequant8_tile");
    dequant4Tile = d.function(module, "dequant4_tile");
    for (MgKind kind : MgKind.values()) {
      for (MgVariant v : MgVariant.values()) {
        mgemv[kind.ordinal()][v.ordinal()] = d.function(module, mgemvName(kind, v));
      }
    }
    ropeKvAppend = d.function(module, "rope_kv_append");
    kvWeightedParts = d.function(module, "kv_weighted_parts");
    // head sizes above 192 stage more than the 48 KiB a launch gets without opting in: the kernel
    // may take all the device opts in to, and weightedParts refuses the head sizes beyond it (the
    // attribute is a cap, not a reservation: a launch's occupancy follows what it asks)
    weightedPartsLimit = Math.max(DEFAULT_SHARED, device.sharedPerBlockOptIn());
    d.setFunctionAttribute(
        kvWeightedParts, CudaDriver.FUNC_ATTR_MAX_DYNAMIC_SHARED, weightedPartsLimit);
    w8a8Quantize = d.function(module, "w8a8_quantize");
    w8a8Epilogue = d.function(module, "w8a8_epilogue");
    w8a8SwigluQuantize = d.function(module, "w8a8_swiglu_quantize");
    String[] forms = {"plain", "norm", "swiglu", "swiglu_norm"};
    for (MqCodes codes : MqCodes.values()) {
      for (MqVariant v : MqVariant.values()) {
        for (int nb = 0; nb < 3; nb++) {
          if (!v.takes(MQ_FRAGMENT_ROWS[nb])) {
            continue;
          }
          for (int f = 0; f < forms.length; f++) {
            MemorySegment fn =
                d.function(
                    module,
                    codes.prefix
                        + MQ_FRAGMENTS[nb]
                        + v.name().toLowerCase(java.util.Locale.ROOT)
                        + "_"
                        + forms[f]);
            if (v.staged()) {
              d.setFunctionAttribute(
                  fn, CudaDriver.FUNC_ATTR_MAX_DYNAMIC_SHARED, device.sharedPerBlockOptIn());
            }
            mq[codes.ordinal()][v.ordinal()][nb][f] = fn;
          }
        }
      }
    }
    dequantTiled = d.function(module, "dequant_tiled");
    for (int f = 0; f < forms.length; f++) {
      mqp[f] = d.function(module, "mqp4_" + forms[f]);
      // the staged input row, 2 bytes a column, past the default 48 KiB for rows over 24,576 wide
      d.setFunctionAttribute(
          mqp[f], CudaDriver.FUNC_ATTR_MAX_DYNAMIC_SHARED, device.sharedPerBlockOptIn());
    }
    mqpRepack = d.function(module, "mqp4_repack");
    for (MgKind kind : MgKind.values()) {
      for (MgVariant v : MgVariant.values()) {
        if (v.fused(kind)) {
          mgemvFused[kind.ordinal()][v.ordinal()] = d.function(module, mgemvFusedName(kind, v));
        }
      }
    }
    for (MqCodes codes : MqCodes.values()) {
      MemorySegment fn = d.function(module, "mqw" + codes.prefix.substring(2));
      d.setFunctionAttribute(fn, CudaDriver.FUNC_ATTR_MAX_DYNAMIC_SHARED, MQW_SHARED_BYTES);
      mqw[codes.ordinal()] = fn;
    }
    mqwCounters = device.allocate(4L * MQW_COUNTERS);
    d.memset(mqwCounters.ptr(), 0, mqwCounters.bytes());
    attentionCounters = device.allocate(4L * ATTENTION_COUNTERS);
    d.memset(attentionCounters.ptr(), 0, attentionCounters.bytes());
    gridCap = device.multiprocessors() * 16;
    overlapped = device.supportsOverlappedLaunch();
  }

  /**
   * Whether kernels launch with programmatic dependent launch (on by default where the device
   * supports it, sm_90 and later): each grid may become resident while the previous kernel on the
   * stream drains, and the products prefetch their first weights before waiting for it. Off is for
   * comparing; launches made (and graphs captured) after the call follow it.
   *
   * @throws IllegalArgumentException turning it on for a device before sm_90
   */
  public void setOverlappedLaunch(boolean on) {
    if (on && !device.supportsOverlappedLaunch()) {
      throw new IllegalArgumentException(
          "programmatic dependent launch needs sm_90 or later: " + device.describe());
    }
    overlapped = on;
  }

  /** Whether kernels launch overlapped (see {@link #setOverlappedLaunch}). */
  public boolean overlappedLaunch() {
    return overlapped;
  }

  /** The CUDA C source of the kernels (a jar resource). */
  public static String source() {
    try (InputStream in = CudaKernels.class.getResourceAsStream(SOURCE_RESOURCE)) {
      if (in == null) {
        throw new IllegalStateException("kernel source " + SOURCE_RESOURCE + " missing from jar");
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private int grid(long elements) {
    return (int)
        Math.max(1, Math.min(gridCap, (elements + ELEMENTWISE_THREADS - 1) / ELEMENTWISE_THREADS));
  }

  private void launch(MemorySegment fn, String name, int gx, int gy, int threads) {
    launch(fn, name, gx, gy, threads, 0);
  }

  private void launch(MemorySegment fn, String name, int gx, int gy, int threads, int sharedBytes) {
    launch(fn, name, gx, gy, 1, threads, sharedBytes);
  }

  private void launch(
      MemorySegment fn, String name, int gx, int gy, int gz, int threads, int sharedBytes) {
    if (profile != null) {
      profile.before(name, gx);
    }
    try {
      if (overlapped) {
        device
            .driver()
            .launchOverlapped(
                fn,
                name,
                gx,
                gy,
                gz,
                threads,
                sharedBytes,
                device.stream(),
                args.pointers,
                launchConfig);
      } else {
        device
            .driver()
            .launch(
                fn, name, gx, gy, gz, threads, 1, 1, sharedBytes, device.stream(), args.pointers);
      }
    } finally {
      args.reset();
    }
    if (profile != null) {
      profile.after();
    }
  }

  /**
   * Times every launch from now on with {@code p} (null: stop timing). For profiling runs only: the
   * events between launches keep kernels from overlapping.
   */
  public void setProfile(LaunchProfile p) {
    profile = p;
  }

  private static int threadsFor(int width) {
    return Math.min(1024, Math.max(32, (width + 31) / 32 * 32));
  }

  /** {@code x[r] = table[tokens[r]]} as F32, {@code dim} wide, for {@code rows} rows. */
  public void embed(long table, int dtype, long tokens, long x, int dim, int rows) {
    args.ptr(table).i32(dtype).ptr(tokens).ptr(x).i32(dim);
    launch(embed, "embed", rows, 1, threadsFor(Math.min(dim, 256)));
  }

  /**
   * {@code out[r] = w * x[row] / rms(x[row])}, {@code row = rowIndex[r]} (or {@code r} when {@code
   * rowIndex} is 0), for {@code rows} output rows, stored as {@code outType}.
   */
  public void rmsNorm(
      long x, long w, long out, int dim, float eps, long rowIndex, int rows, int outType) {
    args.ptr(x).ptr(w).ptr(out).i32(dim).f32(eps).ptr(rowIndex).i32(outType);
    launch(rmsnorm, "rmsnorm", rows, 1, threadsFor(Math.min(dim, 1024)));
  }

  /** {@code out = in} converted to {@code dtype}, {@code count} elements. */
  public void cast(long in, long out, int dtype, long count) {
    args.ptr(in).ptr(out).i32(dtype).i64(count);
    launch(castF32, "cast_f32", grid(count), 1, ELEMENTWISE_THREADS);
  }

  /** {@code x[r][c] += bias[c]} over {@code rows * width} elements. */
  public void addBias(long x, long bias, int width, int rows) {
    long total = (long) rows * width;
    args.ptr(x).ptr(bias).i32(width).i64(total);
    launch(addBias, "add_bias", grid(total), 1, ELEMENTWISE_THREADS);
  }

  /** Rotary embedding in place; {@code style} 0 = adjacent pairs, 1 = halves. */
  public void rope(
      long x, long positions, long cos, long sin, int heads, int headSize, int style, int rows) {
    args.ptr(x).ptr(positions).ptr(cos).ptr(sin).i32(heads).i32(headSize).i32(style);
    launch(rope, "rope", rows, 1, threadsFor(Math.min(heads * headSize / 2, 1024)));
  }

  /** KV pool types beyond the dtypes: int8 and FP8 E4M3 codes with per-(token, head) scales. */
  public static final int DT_KV_I8 = 3;

  public static final int DT_KV_E4M3 = 4;

  /**
   * Encoding bit of the coded KV types: per-token scales (values, and keys without {@link
   * #KV_KEY_CHANNELS}) chosen by least squared error ({@code KvEncoding.Scaling.TOKEN_MSE}).
   */
  public static final int KV_TOKEN_MSE = 1;

  /**
   * Encoding bit of the coded KV types: keys with one scale per (block, layer, kv head, channel),
   * re-scaled as the block fills ({@code KvEncoding.Scaling.BLOCK_CHANNEL}), at {@code
   * keyChannels[((block * layers + layer) * kvHeads + kvHead) * headSize + channel]}.
   */
  public static final int KV_KEY_CHANNELS = 2;

  /**
   * Encoding bit of the coded KV types: keys stored minus their calibrated mean before RoPE rotated
   * to their position ({@code KvEncoding.CENTERED_MSE}, with {@link #KV_TOKEN_MSE}); needs a {@link
   * KeyCentering}.
   */
  public static final int KV_CENTERED = 4;

  /**
   * Encoding bit of the coded KV types, with {@link #KV_CENTERED}: the keys' scale chosen by the
   * error the queries' second moment weighs ({@code KvEncoding.CENTERED_QMSE}).
   */
  public static final int KV_WEIGHTED = 8;

  /** Shared memory a kv_append block may take without opting in. */
  private static final int DEFAULT_SHARED = 48 * 1024;

  /**
   * Appends each row's K and V to the paged pool (see the source for the layout); for {@link
   * #DT_KV_I8} and {@link #DT_KV_E4M3} it encodes them as {@code kvEnc} says ({@link
   * #KV_TOKEN_MSE}, {@link #KV_KEY_CHANNELS}; 0: one absmax scale per token and head) into {@code
   * kvScales} (0 for the unscaled types) and, for keys per channel, {@code keyChannels} (0
   * otherwise); centered keys ({@link #KV_CENTERED}) take their means, moments and RoPE tables from
   * {@code centering} ({@link KeyCentering#NONE} otherwise). The rows of one sequence come in the
   * order of their positions.
   */
  public void kvAppend(
      long k,
      long v,
      long pool,
      long kvScales,
      long keyChannels,
      KeyCentering centering,
      int kvEnc,
      int kvType,
      long rowSeq,
      long positions,
      long tables,
      int maxBlocks,
      int layer,
      int layers,
      int kvHeads,
      int headSize,
      int blockSize,
      int rows) {
    boolean scaled = requireScales(kvType, kvScales);
    requireChannels(kvEnc, keyChannels, scaled);
    requireCentering(kvEnc, centering, headSize);
    weightedParts(k, false, centering, kvEnc, kvType, positions, layer, kvHeads, headSize, rows);
    args.ptr(k).ptr(v).ptr(pool).ptr(kvScales).ptr(keyChannels).i32(kvEnc).i32(kvType);
    args.ptr(rowSeq).ptr(positions);
    args.ptr(tables).i32(maxBlocks).i32(layer).i32(layers).i32(kvHeads).i32(headSize);
    args.i32(blockSize).ptr(centering.mean()).ptr(centering.parts()).ptr(centering.cos());
    args.ptr(centering.sin()).i32(centering.style());
    // quantized types: a warp per (head, k|v) vector
    int threads = scaled ? Math.min(1024, 64 * kvHeads) : Math.min(kvHeads * headSize, 1024);
    threads = Math.min(threadsFor(threads), centeredThreads(kvEnc, headSize));
    launch(kvAppend, "kv_append", rows, 1, threads, centeredShared(kvEnc, headSize, threads));
  }

  /**
   * Parts of each candidate's error kernel (kvant.cu's {@code KV_PARTS}, {@code
   * MseScale.WEIGHTED_PARTS}).
   */
  static final int WEIGHTED_PARTS = 8;

  /** Bytes of {@link KeyCentering#parts} for appends of up to {@code rows} rows. */
  public static long weightedPartsBytes(int rows, int kvHeads) {
    return (long) rows * kvHeads * WEIGHTED_PARTS * 32 * Float.BYTES;
  }

  /**
   * With {@link #KV_WEIGHTED}: the launch before an append ({@code kv_weighted_parts}) that sums
   * each row's and kv head's candidate errors in {@link #WEIGHTED_PARTS} parts into {@code
   * centering.parts()}, where the append adds them up; {@code rotate} when the append rotates
   * {@code k} itself (rope_kv_append). Nothing otherwise. Called before the append's arguments are
   * built (it launches with the same builder).
   */
  private void weightedParts(
      long k,
      boolean rotate,
      KeyCentering centering,
      int kvEnc,
      int kvType,
      long positions,
      int layer,
      int kvHeads,
      int headSize,
      int rows) {
    if ((kvEnc & KV_WEIGHTED) == 0) {
      return;
    }
    if (centering.parts() == 0 || rows > centering.partRows()) {
      throw new IllegalArgumentException(
          "the weighted key search needs scratch for "
              + rows
              + " rows, has "
              + centering.partRows()
              + " (KeyCentering.withParts)");
    }
    // checked before the arguments: a refusal must leave the shared builder empty
    if (weightedPartsShared(headSize) > weightedPartsLimit) {
      throw new IllegalArgumentException(
          "the weighted key search at head size "
              + headSize
              + " needs "
              + weightedPartsShared(headSize)
              + " bytes of shared memory a block; this device gives "
              + weightedPartsLimit);
    }
    args.ptr(k).i32(rotate ? 1 : 0).ptr(centering.cos()).ptr(centering.sin());
    args.i32(centering.style()).ptr(positions).ptr(centering.mean()).ptr(centering.momentT());
    args.i32(kvType).i32(layer).i32(kvHeads).i32(headSize).ptr(centering.parts());
    int chunk = (headSize + WEIGHTED_PARTS - 1) / WEIGHTED_PARTS;
    int threads = Math.min(256, 32 * chunk);
    launch(
        kvWeightedParts,
        "kv_weighted_parts",
        rows,
        kvHeads,
        WEIGHTED_PARTS,
        threads,
        weightedPartsShared(headSize));
  }

  /**
   * Dynamic shared memory of a kv_weighted_parts block: y, 32 padded d vectors, 32 partial row sums
   * and the part's columns of W (70,784 bytes at head size 256: opted in).
   */
  static int weightedPartsShared(int headSize) {
    int chunk = (headSize + WEIGHTED_PARTS - 1) / WEIGHTED_PARTS;
    return (headSize + 32 * (headSize + 1) + 32 * chunk + headSize * chunk) * Float.BYTES;
  }

  /**
   * The most threads a kv_append block may have for {@code kvEnc}: each warp of a centered one
   * keeps its key in shared memory.
   */
  static int centeredThreads(int kvEnc, int headSize) {
    if ((kvEnc & KV_CENTERED) == 0) {
      return 1024;
    }
    return 32 * Math.min(32, DEFAULT_SHARED / centeredWarpBytes(headSize));
  }

  /** Dynamic shared memory of a kv_append block of {@code threads}: 0 unless centered. */
  static int centeredShared(int kvEnc, int headSize, int threads) {
    return (kvEnc & KV_CENTERED) == 0 ? 0 : threads / 32 * centeredWarpBytes(headSize);
  }

  private static int centeredWarpBytes(int headSize) {
    return headSize * Float.BYTES;
  }

  /**
   * Throws unless {@code centering} matches {@code kvEnc}'s {@link #KV_CENTERED} and {@link
   * #KV_WEIGHTED} bits, which need per-token least-squares scales and an even head size <= 256.
   */
  static void requireCentering(int kvEnc, KeyCentering centering, int headSize) {
    int bits = kvEnc & (KV_CENTERED | KV_WEIGHTED);
    if (bits != centering.bits()) {
      throw new IllegalArgumentException(
          "kv encoding bits " + kvEnc + " with key centering " + centering);
    }
    if (bits != 0
        && ((kvEnc & KV_TOKEN_MSE) == 0
            || (kvEnc & KV_KEY_CHANNELS) != 0
            || headSize % 2 != 0
            || headSize > 256)) {
      throw new IllegalArgumentException(
          "centered keys need per-token least-squares scales and an even head size <= 256, got"
              + " encoding bits "
              + kvEnc
              + " and head size "
              + headSize);
    }
  }

  /** Whether {@code kvType} is scaled; throws unless it has scales exactly when it is. */
  private static boolean requireScales(int kvType, long kvScales) {
    boolean scaled = kvType == DT_KV_I8 || kvType == DT_KV_E4M3;
    if (scaled == (kvScales == 0)) {
      throw new IllegalArgumentException("kv type " + kvType + " with scales " + kvScales);
    }
    return scaled;
  }

  /** Throws unless {@code keyChannels} is set exactly when {@code kvEnc} has keys per channel. */
  private static void requireChannels(int kvEnc, long keyChannels, boolean scaled) {
    boolean channels = (kvEnc & KV_KEY_CHANNELS) != 0;
    if ((kvEnc & ~(KV_TOKEN_MSE | KV_KEY_CHANNELS | KV_CENTERED | KV_WEIGHTED)) != 0
        || (kvEnc != 0 && !scaled)
        || channels == (keyChannels == 0)) {
      throw new IllegalArgumentException(
          "kv encoding bits " + kvEnc + " with key channel scales " + keyChannels);
    }
  }

  /**
   * {@link #rope} on {@code q} ({@code heads}) and {@code k} ({@code kvHeads}), then {@link
   * #kvAppend} of the rotated K and V: with {@code oneLaunch} as one kernel ({@code
   * rope_kv_append}, one 1,024-thread block per row: for the few rows of decode steps), else as
   * those three launches. Same results either way. With keys per channel ({@link #KV_KEY_CHANNELS})
   * {@code oneLaunch} is for steps whose rows are of distinct sequences only (decode steps): the
   * first row of a block encodes the keys of the block's later rows of the launch, which the one
   * launch may not have rotated yet. Centered keys ({@code centering}, as {@link #kvAppend}) must
   * use this call's {@code cos}, {@code sin} and {@code style}.
   */
  public void ropeAndAppendKv(
      long q,
      long k,
      long v,
      long cos,
      long sin,
      int heads,
      int style,
      long pool,
      long kvScales,
      long keyChannels,
      KeyCentering centering,
      int kvEnc,
      int kvType,
      long rowSeq,
      long positions,
      long tables,
      int maxBlocks,
      int layer,
      int layers,
      int kvHeads,
      int headSize,
      int blockSize,
      int rows,
      boolean oneLaunch) {
    if (!oneLaunch) {
      rope(q, positions, cos, sin, heads, headSize, style, rows);
      rope(k, positions, cos, sin, kvHeads, headSize, style, rows);
      kvAppend(
          k,
          v,
          pool,
          kvScales,
          keyChannels,
          centering,
          kvEnc,
          kvType,
          rowSeq,
          positions,
          tables,
          maxBlocks,
          layer,
          layers,
          kvHeads,
          headSize,
          blockSize,
          rows);
      return;
    }
    requireChannels(kvEnc, keyChannels, requireScales(kvType, kvScales));
    requireCentering(kvEnc, centering, headSize);
    if (centering.centered()
        && (centering.cos() != cos || centering.sin() != sin || centering.style() != style)) {
      throw new IllegalArgumentException("centered keys must use the rotation's own RoPE tables");
    }
    weightedParts(k, true, centering, kvEnc, kvType, positions, layer, kvHeads, headSize, rows);
    args.ptr(q).ptr(k).ptr(v).ptr(cos).ptr(sin).i32(heads).i32(style).ptr(pool).ptr(kvScales);
    args.ptr(keyChannels)
        .i32(kvEnc)
        .i32(kvType)
        .ptr(rowSeq)
        .ptr(positions)
        .ptr(tables)
        .i32(maxBlocks)
        .i32(layer);
    args.i32(layers).i32(kvHeads).i32(headSize).i32(blockSize);
    args.ptr(centering.mean()).ptr(centering.parts());
    int threads = centeredThreads(kvEnc, headSize);
    launch(
        ropeKvAppend, "rope_kv_append", rows, 1, threads, centeredShared(kvEnc, headSize, threads));
  }

  /**
   * Paged attention of every row over its sequence's positions {@code [0, positions[r]]}; {@code
   * keyChannels}: the keys' channel scales ({@link #KV_KEY_CHANNELS}), 0 when keys have token
   * scales; {@code centering}: the keys' means and RoPE tables when keys are centered ({@link
   * #KV_CENTERED}: each score gets {@code q . R(t) m} back), else {@link KeyCentering#NONE}.
   */
  public void attention(
      long q,
      long pool,
      long kvScales,
      long keyChannels,
      KeyCentering centering,
      int kvType,
      long out,
      long rowSeq,
      long positions,
      long tables,
      int maxBlocks,
      int layer,
      int layers,
      int heads,
      int kvHeads,
      int headSize,
      int blockSize,
      float scale,
      int rows,
      int outType) {
    if (headSize > 256) {
      throw new IllegalArgumentException("head size " + headSize + " > 256 is not supported");
    }
    args.ptr(q).ptr(pool).ptr(kvScales).ptr(keyChannels).i32(kvType).ptr(out).ptr(rowSeq);
    args.ptr(positions).ptr(tables);
    args.i32(maxBlocks).i32(layer).i32(layers).i32(heads).i32(kvHeads).i32(headSize);
    args.i32(blockSize).f32(scale).i32(outType);
    centeringArgs(centering);
    // attention_wide (16 warps per (row, head)) when the blocks fit one wave (decode of few
    // sequences: latency-bound chains), attention (4 warps) when there are many
    if ((long) rows * heads <= device.multiprocessors()) {
      launch(attentionWide, "attention_wide", rows, heads, 32 * ATTN_WARPS);
    } else {
      launch(attention, "attention", rows, heads, 128);
    }
  }

  /** The attention kernels' last four arguments: the keys' means and RoPE's tables, or nulls. */
  private void centeringArgs(KeyCentering c) {
    args.ptr(c.mean()).ptr(c.mean() == 0 ? 0 : c.cos()).ptr(c.mean() == 0 ? 0 : c.sin());
    args.i32(c.style());
  }

  /** Query vectors (rows times the query heads of a kv head) per attention_tiled block. */
  public static final int TILE_VECTORS = 16;

  /** Positions per K/V tile of attention_tiled (FA_KT in the source). */
  private static final int TILE_POSITIONS = 32;

  /** Dynamic shared memory of an attention_tiled block: K and V tiles (rows padded) and q rows. */
  static int tiledSharedBytes(int headSize) {
    return 4 * (2 * TILE_POSITIONS * (headSize + 1) + TILE_VECTORS * headSize);
  }

  /**
   * Rows per attention_tiled tile for a model with {@code heads} query heads over {@code kvHeads}
   * kv heads ({@link #TILE_VECTORS} over the group size), 0 when a group alone exceeds a tile (the
   * per-row kernels serve such models) or the head size does not fit.
   */
  public int tiledRows(int heads, int kvHeads, int headSize) {
    if (headSize > 256 || tiledSharedBytes(headSize) > device.sharedPerBlockOptIn()) {
      return 0;
    }
    return TILE_VECTORS / (heads / kvHeads);
  }

  /**
   * The query tiles of {@link #attentionTiled} for a step's rows: runs of consecutive rows of one
   * sequence ({@code rowSeq[r]}), cut every {@code rowsPerTile} rows. Returns {@code [first
   * rows..., row counts...]}, two ints per tile; the tile count is half the length.
   */
  public static int[] queryTiles(int[] rowSeq, int n, int rowsPerTile) {
    if (rowsPerTile < 1) {
      throw new IllegalArgumentException("rows per tile must be >= 1, got " + rowsPerTile);
    }
    int[] first = new int[n];
    int[] count = new int[n];
    int tiles = 0;
    for (int r = 0; r < n; r++) {
      int t = tiles - 1;
      if (t >= 0 && rowSeq[first[t]] == rowSeq[r] && count[t] < rowsPerTile) {
        count[t]++;
      } else {
        first[tiles] = r;
        count[tiles++] = 1;
      }
    }
    int[] out = new int[2 * tiles];
    System.arraycopy(first, 0, out, 0, tiles);
    System.arraycopy(count, 0, out, tiles, tiles);
    return out;
  }

  /**
   * How attention_tiled splits positions over blocks: {@code splits} ranges of {@code length}
   * positions (a multiple of the K/V tile) each; one split when the tiles alone fill the GPU.
   */
  public record AttentionSplit(int splits, int length) {
    /** Floats of partial results the split needs for {@code tiles} tiles (0 for one split). */
    public long partialFloats(int tiles, int kvHeads, int headSize) {
      return splits == 1 ? 0 : (long) tiles * kvHeads * splits * TILE_VECTORS * (headSize + 2);
    }
  }

  /**
   * The split for {@code tiles} tiles over {@code kvHeads} kv heads whose longest row sees {@code
   * maxLen} positions: enough blocks for about eight per multiprocessor, each range at least two
   * K/V tiles long. A pure function of its arguments, so a captured decode graph (keyed by rows and
   * a bound on the length) always gets the same plan.
   */
  public AttentionSplit attentionSplit(int tiles, int kvHeads, int maxLen) {
    return splitFor(tiles, kvHeads, maxLen, device.multiprocessors());
  }

  /**
   * {@link #attentionSplit} for a device of {@code multiprocessors} SMs. Ranges may be one K/V tile
   * long: a block walks its tiles one after another (a table read, the staging loads, the scores
   * and the P x V each wait on the last), so at one row the kernel's time is that chain per tile,
   * and shorter ranges in more blocks shorten it (perf/RESULTS.md, session 6's launch profile).
   */
  public static AttentionSplit splitFor(int tiles, int kvHeads, int maxLen, int multiprocessors) {
    int blocks = tiles * kvHeads;
    int want = (int) Math.min(MAX_ATTENTION_SPLITS, (8L * multiprocessors + blocks - 1) / blocks);
    int byLength = (maxLen + TILE_POSITIONS - 1) / TILE_POSITIONS;
    int splits = Math.max(1, Math.min(want, byLength));
    if (splits == 1) {
      return new AttentionSplit(1, maxLen);
    }
    int len = (maxLen + splits - 1) / splits;
    len = (len + TILE_POSITIONS - 1) / TILE_POSITIONS * TILE_POSITIONS;
    return new AttentionSplit((maxLen + len - 1) / len, len);
  }

  /**
   * Flash-style paged attention (attention_tiled, then attention_merge when split): as {@link
   * #attention}, over the query tiles {@code tileRow0[t]}, {@code tileRows[t]} (device int arrays
   * of {@code tiles} entries, from {@link #queryTiles} with {@link #tiledRows} rows per tile): each
   * block stages a tile of K and V in shared memory once for up to {@link #TILE_VECTORS} query
   * vectors (rows of one sequence times the query heads of one kv head), over one range of {@code
   * split}'s positions. {@code partial} holds {@code split.partialFloats(...)} floats (0 for one
   * split). {@code keyChannels}: the keys' channel scales ({@link #KV_KEY_CHANNELS}), 0 when keys
   * have token scales; {@code centering} as {@link #attention}'s.
   */
  public void attentionTiled(
      long q,
      long pool,
      long kvScales,
      long keyChannels,
      KeyCentering centering,
      int kvType,
      long out,
      long rowSeq,
      long positions,
      long tables,
      int maxBlocks,
      int layer,
      int layers,
      int heads,
      int kvHeads,
      int headSize,
      int blockSize,
      float scale,
      long tileRow0,
      long tileRows,
      int tiles,
      AttentionSplit split,
      long partial,
      int outType) {
    requireTiled("attention_tiled", heads, kvHeads, headSize);
    if (split.splits() > 1 && partial == 0) {
      throw new IllegalArgumentException("a split attention needs its partial buffer");
    }
    args.ptr(q).ptr(pool).ptr(kvScales).ptr(keyChannels).i32(kvType).ptr(out).ptr(rowSeq);
    args.ptr(positions).ptr(tables);
    args.i32(maxBlocks).i32(layer).i32(layers).i32(heads).i32(kvHeads).i32(headSize);
    args.i32(blockSize).f32(scale).i32(outType).ptr(tileRow0).ptr(tileRows);
    args.i32(split.splits()).i32(split.length()).ptr(partial);
    centeringArgs(centering);
    launch(
        attentionTiled,
        "attention_tiled",
        tiles,
        kvHeads,
        split.splits(),
        128,
        tiledSharedBytes(headSize));
    if (split.splits() > 1) {
      args.ptr(partial).ptr(out).ptr(tileRow0).ptr(tileRows).i32(heads).i32(kvHeads);
      args.i32(headSize).i32(split.splits()).i32(outType);
      launch(
          attentionMerge,
          "attention_merge",
          tiles,
          kvHeads,
          TILE_VECTORS,
          Math.max(32, Math.min(256, headSize)),
          0);
    }
  }

  /** Throws unless a tile of {@link #TILE_VECTORS} query vectors holds a kv head's group. */
  private void requireTiled(String kernel, int heads, int kvHeads, int headSize) {
    if (tiledRows(heads, kvHeads, headSize) < 1) {
      throw new IllegalArgumentException(
          kernel
              + " takes head size <= 256 and <= "
              + TILE_VECTORS
              + " query heads per kv head, got "
              + headSize
              + " and "
              + heads / kvHeads);
    }
  }

  /** Counters attention_decode has: one per (tile, kv head) of a launch. */
  static final int ATTENTION_COUNTERS = 1 << 16;

  /**
   * The most splits {@link #splitFor} plans (kvant.cu's FA_MAX_SPLITS, attention_decode's bound).
   */
  public static final int MAX_ATTENTION_SPLITS = 64;

  /**
   * Whether {@link #attentionDecode} serves a KV cache of these encoding bits and centering under
   * {@code split} with KV blocks of {@code blockSize} positions: any, centered keys included, but
   * keys per channel ({@link #KV_KEY_CHANNELS}) only where every split covers whole KV blocks (an
   * append may re-code its block's earlier slots, which must lie in the appending block's own
   * range). {@code centering} is checked against the bits where the launch is made.
   */
  public static boolean attentionDecodeTakes(
      int kvEnc, KeyCentering centering, AttentionSplit split, int blockSize) {
    return (kvEnc & KV_KEY_CHANNELS) == 0 || split.splits() == 1 || split.length() % blockSize == 0;
  }

  /** {@link #attentionDecode} over keys that are not centered. */
  public void attentionDecode(
      DecodeAttention a, long tileRow0, int tiles, AttentionSplit split, long partial) {
    attentionDecode(a, KeyCentering.NONE, tileRow0, tiles, split, partial);
  }

  /**
   * {@link #ropeAndAppendKv} then {@link #attentionTiled} (with its merge) of a decode step, as one
   * launch ({@code attention_decode}) with the same results: for steps whose rows are of distinct
   * sequences, so that {@code tiles} (from {@link #queryTiles}) equals the rows and each tile is
   * one row, and KV caches {@link #attentionDecodeTakes} takes ({@code a.keyChannels()}: the keys'
   * channel scales with {@link #KV_KEY_CHANNELS}, else 0; {@code centering} as {@link #kvAppend}'s,
   * whose weighted search, {@link #KV_WEIGHTED}, runs as a launch before this one). {@code a}'s
   * {@code q}, {@code k} and {@code v} are the products' outputs; unlike {@link #ropeAndAppendKv}
   * this leaves them unrotated. A split launch merges its partials itself (its last block per tile
   * and kv head), so {@code partial} is as {@link #attentionTiled}'s and no merge launch follows.
   */
  public void attentionDecode(
      DecodeAttention a,
      KeyCentering centering,
      long tileRow0,
      int tiles,
      AttentionSplit split,
      long partial) {
    requireTiled("attention_decode", a.heads(), a.kvHeads(), a.headSize());
    requireChannels(a.kvEnc(), a.keyChannels(), requireScales(a.kvType(), a.kvScales()));
    requireCentering(a.kvEnc(), centering, a.headSize());
    if (centering.centered()
        && (centering.cos() != a.cos()
            || centering.sin() != a.sin()
            || centering.style() != a.style())) {
      throw new IllegalArgumentException("centered keys must use the rotation's own RoPE tables");
    }
    if (!attentionDecodeTakes(a.kvEnc(), centering, split, a.blockSize())) {
      throw new IllegalArgumentException(
          "attention_decode does not take kv encoding bits "
              + a.kvEnc()
              + " under "
              + split
              + " with blocks of "
              + a.blockSize());
    }
    if (split.splits() > 1 && partial == 0) {
      throw new IllegalArgumentException("a split attention needs its partial buffer");
    }
    if (split.splits() > MAX_ATTENTION_SPLITS) {
      throw new IllegalArgumentException(
          "attention_decode merges at most " + MAX_ATTENTION_SPLITS + " splits, got " + split);
    }
    requireCounted("attention_decode", tiles, a.kvHeads());
    weightedParts(
        a.k(),
        true,
        centering,
        a.kvEnc(),
        a.kvType(),
        a.positions(),
        a.layer(),
        a.kvHeads(),
        a.headSize(),
        tiles);
    decodeAttentionArgs(a);
    args.ptr(a.keyChannels()).i32(a.kvEnc()).i32(a.kvType());
    args.ptr(a.out()).ptr(a.rowSeq()).ptr(a.positions()).ptr(a.tables()).i32(a.maxBlocks());
    args.i32(a.layer()).i32(a.layers()).i32(a.heads()).i32(a.kvHeads()).i32(a.headSize());
    args.i32(a.blockSize()).f32(a.scale()).i32(a.outType());
    args.ptr(tileRow0).i32(split.splits()).i32(split.length()).ptr(partial);
    args.ptr(attentionCounters.ptr()).ptr(centering.mean()).ptr(centering.parts());
    launch(
        attentionDecode,
        "attention_decode",
        tiles,
        a.kvHeads(),
        split.splits(),
        128,
        tiledSharedBytes(a.headSize()));
  }

  /**
   * A layer's one-launch decode attention ({@link #attentionDecode}, {@link #attentionRows}): the
   * products' unrotated {@code q}, {@code k}, {@code v}; the RoPE tables and their {@code style};
   * the paged {@code pool} with its scales ({@code kvScales}, {@code keyChannels} for {@link
   * #KV_KEY_CHANNELS}, else 0), encoding bits and KV type; the output {@code out} in {@code
   * outType}; the rows' sequences, positions and block tables ({@code maxBlocks} a sequence); the
   * layer of {@code layers}, the heads and the attention {@code scale}.
   */
  public record DecodeAttention(
      long q,
      long k,
      long v,
      long cos,
      long sin,
      int style,
      long pool,
      long kvScales,
      long keyChannels,
      int kvEnc,
      int kvType,
      long out,
      long rowSeq,
      long positions,
      long tables,
      int maxBlocks,
      int layer,
      int layers,
      int heads,
      int kvHeads,
      int headSize,
      int blockSize,
      float scale,
      int outType) {}

  /** The leading arguments both one-launch decode attention kernels take, in their order. */
  private void decodeAttentionArgs(DecodeAttention a) {
    args.ptr(a.q()).ptr(a.k()).ptr(a.v()).ptr(a.cos()).ptr(a.sin()).i32(a.style());
    args.ptr(a.pool()).ptr(a.kvScales());
  }

  /**
   * Throws unless the split arrival counters hold one per (row, kv head) of a launch ({@code
   * kvHeads}: query heads, for a block per query head).
   */
  private static void requireCounted(String kernel, int rows, int kvHeads) {
    if ((long) rows * kvHeads > ATTENTION_COUNTERS) {
      throw new IllegalArgumentException(
          kernel
              + " counts "
              + ATTENTION_COUNTERS
              + " (row, kv head) pairs, got "
              + (long) rows * kvHeads);
    }
  }

  /** The most warps of an {@link #attentionRows} block (kvant.cu's AR_MAX_WARPS). */
  public static final int ROWS_MAX_WARPS = 8;

  /** Query vectors per (split, row, kv head) in {@link #attentionRows}' partials (FA_ROWS). */
  static final int ROWS_VECTORS = 4;

  /**
   * How {@link #attentionRows} covers a decode step's positions: {@code blocks} per (row, kv head)
   * of {@code warps} warps, each warp one range of {@code tilesPerWarp} K/V tiles of 32 positions;
   * with {@code perHead}, one block per (row, query head) instead, each for its one query vector
   * ({@link #rowsPerHeadSuits}).
   */
  public record RowsPlan(int blocks, int warps, int tilesPerWarp, boolean perHead) {
    /** A plan of blocks per kv head. */
    public RowsPlan(int blocks, int warps, int tilesPerWarp) {
      this(blocks, warps, tilesPerWarp, false);
    }

    /** This plan with a block per query head. */
    public RowsPlan withBlockPerHead() {
      return new RowsPlan(blocks, warps, tilesPerWarp, true);
    }

    /** The ranges of a row: blocks times warps. */
    public int splits() {
      return blocks * warps;
    }

    /** Floats of partial results for {@code rows} rows (0 when each row is one block). */
    public long partialFloats(int rows, int kvHeads, int headSize) {
      return blocks == 1 ? 0 : (long) rows * kvHeads * splits() * ROWS_VECTORS * (headSize + 2);
    }
  }

  /**
   * Whether {@link #attentionRows} serves a model of these heads over a KV cache of this type and
   * encoding: head size 32, 64 or 128, at most four query heads per kv head, F16, BF16, INT8 or FP8
   * KV with token scales (absmax or searched) or none, or INT8/FP8 with keys per channel ({@link
   * #KV_KEY_CHANNELS}, see {@link #rowsPlanHoldsWholeBlocks}). Other caches run {@link
   * #attentionDecode}.
   */
  public static boolean attentionRowsTakes(
      int heads, int kvHeads, int headSize, int kvType, int kvEnc) {
    boolean coded = kvType == DT_KV_I8 || kvType == DT_KV_E4M3;
    return (headSize == 32 || headSize == 64 || headSize == 128)
        && heads % kvHeads == 0
        && heads / kvHeads <= ROWS_VECTORS
        && kvType >= DT_F16
        && kvType <= DT_KV_E4M3
        && (kvEnc & ~(KV_TOKEN_MSE | KV_KEY_CHANNELS)) == 0
        && (coded || kvEnc == 0);
  }

  /**
   * Whether {@code plan} suits keys per channel over KV blocks of {@code blockSize} positions: each
   * block of the plan covers whole KV blocks (or a row is one block), since the append may re-code
   * its KV block's earlier slots and only the appending block's own warps wait for that.
   */
  public static boolean rowsPlanHoldsWholeBlocks(RowsPlan plan, int blockSize) {
    return plan.blocks() == 1
        || (long) plan.warps() * plan.tilesPerWarp() * TILE_POSITIONS % blockSize == 0;
  }

  /**
   * Whether a block per query head ({@link RowsPlan#withBlockPerHead}) suits {@code rows} rows over
   * a KV cache of {@code kvType} and encoding bits {@code kvEnc}: F16/BF16, or INT8/FP8 with token
   * scales (every block rotates and codes the appended row itself and takes it from its own shared
   * memory; keys per channel may re-code the KV block's earlier slots, which only the storing block
   * would see), several query heads per kv head, and at most two (row, query head) pairs per
   * multiprocessor (beyond that a block per kv head already fills the device, and the query heads'
   * blocks would read its keys and values several times over).
   */
  public boolean rowsPerHeadSuits(int rows, int heads, int kvHeads, int kvType, int kvEnc) {
    return rowsPerHeadSuits(rows, heads, kvHeads, kvType, kvEnc, device.multiprocessors());
  }

  /** {@link #rowsPerHeadSuits(int, int, int, int, int)} on a device of {@code multiprocessors}. */
  public static boolean rowsPerHeadSuits(
      int rows, int heads, int kvHeads, int kvType, int kvEnc, int multiprocessors) {
    return (kvType == DT_F16 || kvType == DT_BF16 || kvType == DT_KV_I8 || kvType == DT_KV_E4M3)
        && (kvEnc & KV_KEY_CHANNELS) == 0
        && heads > kvHeads
        && (long) rows * heads <= 2L * multiprocessors;
  }

  /**
   * The plan with a block per query head over {@code rows} rows of {@code heads} query heads:
   * {@link #rowsPlanFor} with the (row, query head) pairs as its units, so that long contexts still
   * get blocks enough per row but not four times as many.
   */
  public RowsPlan rowsPlanPerHead(int rows, int heads, int maxLen) {
    return rowsPlanFor(rows, heads, maxLen, device.multiprocessors()).withBlockPerHead();
  }

  /** {@link #rowsPlanFor} on this device. */
  public RowsPlan rowsPlan(int rows, int kvHeads, int maxLen) {
    return rowsPlanFor(rows, kvHeads, maxLen, device.multiprocessors());
  }

  /**
   * The plan for {@code rows} rows over {@code kvHeads} kv heads whose longest row sees {@code
   * maxLen} positions: a warp per K/V tile, up to {@link #ROWS_MAX_WARPS} to a block; more blocks
   * per row only while the rows' blocks alone are fewer than two per multiprocessor (then their
   * partials meet in global memory), else each warp walks several tiles. At most {@link
   * #MAX_ATTENTION_SPLITS} ranges a row. A pure function of its arguments, so a captured decode
   * graph always meets the plan it was captured with.
   */
  public static RowsPlan rowsPlanFor(int rows, int kvHeads, int maxLen, int multiprocessors) {
    if (rows < 1 || kvHeads < 1 || maxLen < 1) {
      throw new IllegalArgumentException(
          "rows " + rows + ", kv heads " + kvHeads + ", length " + maxLen);
    }
    int tiles = (maxLen + TILE_POSITIONS - 1) / TILE_POSITIONS;
    int warps = Math.min(ROWS_MAX_WARPS, tiles);
    long pairs = (long) rows * kvHeads;
    int want = (int) Math.max(1, Math.min(tiles, (2L * multiprocessors + pairs - 1) / pairs));
    int blocks = Math.min(want, (tiles + warps - 1) / warps);
    int per = (tiles + blocks * warps - 1) / (blocks * warps);
    while (true) {
      blocks = (tiles + warps * per - 1) / (warps * per);
      if (blocks * warps <= MAX_ATTENTION_SPLITS) {
        return new RowsPlan(blocks, warps, per);
      }
      per++;
    }
  }

  /**
   * {@link #attentionDecode} with a warp per range of positions where it has a block ({@code
   * attention_rows}), for what {@link #attentionRowsTakes}: the same inputs {@code a} over {@code
   * rows} rows (each its own tile, so no tile table), and the split planned by {@link #rowsPlan};
   * {@code partial} holds {@code plan.partialFloats(rows, kvHeads, headSize)} floats. The results
   * equal, to the bit, {@link #ropeAndAppendKv} then {@link #attentionTiled} under a split of
   * {@code plan.splits()} ranges of {@code 32 * plan.tilesPerWarp()} positions (one range:
   * unsplit). Except with keys per channel, each warp asks for its first tile's keys and values of
   * the positions before the row's own before it waits for the previous kernel (programmatic
   * launch: they arrive while that kernel still runs), so the step's positions, row sequences and
   * block tables must be written by no kernel of the step (they are copied in before it, as {@code
   * CudaTransformer} does).
   */
  public void attentionRows(DecodeAttention a, int rows, RowsPlan plan, long partial) {
    int headSize = a.headSize();
    int kvType = a.kvType();
    if (!attentionRowsTakes(a.heads(), a.kvHeads(), headSize, kvType, a.kvEnc())) {
      throw new IllegalArgumentException(
          "attention_rows does not take head size "
              + headSize
              + " with "
              + a.heads()
              + " heads over "
              + a.kvHeads()
              + ", kv type "
              + kvType
              + ", encoding bits "
              + a.kvEnc());
    }
    requireChannels(a.kvEnc(), a.keyChannels(), requireScales(kvType, a.kvScales()));
    boolean channels = (a.kvEnc() & KV_KEY_CHANNELS) != 0;
    if (channels && !rowsPlanHoldsWholeBlocks(plan, a.blockSize())) {
      throw new IllegalArgumentException(
          "attention_rows with keys per channel needs whole KV blocks of "
              + a.blockSize()
              + " per block, got "
              + plan);
    }
    if (plan.warps() < 1
        || plan.warps() > ROWS_MAX_WARPS
        || plan.tilesPerWarp() < 1
        || plan.blocks() < 1
        || plan.splits() > MAX_ATTENTION_SPLITS) {
      throw new IllegalArgumentException("attention_rows cannot run " + plan);
    }
    if (plan.blocks() > 1 && partial == 0) {
      throw new IllegalArgumentException("attention_rows over several blocks needs its partials");
    }
    if (plan.perHead() && channels) {
      throw new IllegalArgumentException(
          "attention_rows with a block per query head does not take keys per channel");
    }
    requireCounted("attention_rows", rows, plan.perHead() ? a.heads() : a.kvHeads());
    // attention_rows is compiled per head size and KV type: neither is an argument
    decodeAttentionArgs(a);
    args.ptr(a.keyChannels()).i32(a.kvEnc());
    args.ptr(a.out()).ptr(a.rowSeq()).ptr(a.positions()).ptr(a.tables()).i32(a.maxBlocks());
    args.i32(a.layer()).i32(a.layers()).i32(a.heads()).i32(a.kvHeads()).i32(a.blockSize());
    args.f32(a.scale()).i32(a.outType());
    args.i32(plan.tilesPerWarp()).ptr(partial).ptr(attentionCounters.ptr());
    int h = Integer.numberOfTrailingZeros(headSize) - 5;
    MemorySegment fn =
        channels
            ? attentionRowsKeyChannels[h][kvType - DT_KV_I8]
            : plan.perHead()
                ? attentionRowsPerHead[h][kvType - DT_F16]
                : attentionRows[h][kvType - DT_F16];
    launch(
        fn,
        "attention_rows",
        rows,
        plan.perHead() ? a.heads() : a.kvHeads(),
        plan.blocks(),
        32 * plan.warps(),
        0);
  }

  /** {@code out = silu(gate) * up} over {@code total} elements, stored as {@code outType}. */
  public void swiglu(long gate, long up, long out, long total, int outType) {
    args.ptr(gate).ptr(up).ptr(out).i64(total).i32(outType);
    launch(swiglu, "swiglu", grid(total), 1, ELEMENTWISE_THREADS);
  }

  /** {@code x += d} over {@code total} elements. */
  public void addInPlace(long x, long d, long total) {
    args.ptr(x).ptr(d).i64(total);
    launch(addInplace, "add_inplace", grid(total), 1, ELEMENTWISE_THREADS);
  }

  /** One token id per row of {@code logits} (see the kernel for the sampling rule). */
  public void sample(
      long logits,
      int vocab,
      long temperature,
      long topK,
      long topP,
      long minP,
      long seeds,
      long out,
      int rows) {
    args.ptr(logits).i32(vocab).ptr(temperature).ptr(topK).ptr(topP).ptr(minP).ptr(seeds).ptr(out);
    launch(sample, "sample", rows, 1, 1024);
  }

  /** Uniform values in {@code [-scale, scale)} from {@code seed}: synthetic benchmark weights. */
  public void fillUniform(long out, int dtype, long count, long seed, float scale) {
    args.ptr(out).i32(dtype).i64(count).i64(seed).f32(scale);
    launch(fillUniform, "fill_uniform", grid(count), 1, ELEMENTWISE_THREADS);
  }

  /** Activation rows one pass of {@link #qgemv8}/{@link #qgemv4} handles. */
  public static final int QGEMV_ROWS = 8;

  private static final int QGEMV_WARPS = 8;

  /** 8-bit code formats of {@link #qgemv8}. */
  public static final int QF_INT8 = 0;

  public static final int QF_E4M3 = 1;
  public static final int QF_E5M2 = 2;

  /**
   * {@code y[r] (+)= x[r] W^T} for {@code n <= QGEMV_ROWS} F32 rows, {@code W[out][in]} of 8-bit
   * codes (layout in the source), reading the weights once for all rows.
   */
  public void qgemv8(
      long w,
      long ldw,
      long scales,
      int groupSize,
      int groupsPerRow,
      int fmt,
      long x,
      long y,
      int out,
      int in,
      int n,
      boolean accumulate) {
    checkRows(n);
    args.ptr(w).i64(ldw).ptr(scales).i32(groupSize).i32(groupsPerRow).i32(fmt).ptr(x).ptr(y);
    args.i32(out).i32(in).i32(n).i32(accumulate ? 1 : 0);
    launch(qgemv8, "qgemv8", (out + QGEMV_WARPS - 1) / QGEMV_WARPS, 1, 32 * QGEMV_WARPS);
  }

  /** As {@link #qgemv8} for 4-bit codes; {@code zeros} 0 means symmetric (zero point 8). */
  public void qgemv4(
      long w,
      long ldw,
      long scales,
      long zeros,
      int groupSize,
      int groupsPerRow,
      long x,
      long y,
      int out,
      int in,
      int n,
      boolean accumulate) {
    checkRows(n);
    args.ptr(w).i64(ldw).ptr(scales).ptr(zeros).i32(groupSize).i32(groupsPerRow).ptr(x).ptr(y);
    args.i32(out).i32(in).i32(n).i32(accumulate ? 1 : 0);
    launch(qgemv4, "qgemv4", (out + QGEMV_WARPS - 1) / QGEMV_WARPS, 1, 32 * QGEMV_WARPS);
  }

  private static void checkRows(int n) {
    if (n < 1 || n > QGEMV_ROWS) {
      throw new IllegalArgumentException("qgemv takes 1.." + QGEMV_ROWS + " rows, got " + n);
    }
  }

  /** Rows {@code [row0, row0 + rows)} of an 8-bit-code matrix decoded into {@code out} (dtype). */
  public void dequant8(
      long w,
      long ldw,
      long scales,
      int groupSize,
      int groupsPerRow,
      int fmt,
      long out,
      int dtype,
      int row0,
      int rows,
      int in) {
    args.ptr(w).i64(ldw).ptr(scales).i32(groupSize).i32(groupsPerRow).i32(fmt).ptr(out);
    args.i32(dtype).i32(row0).i32(rows).i32(in);
    launch(dequant8, "dequant8", grid((long) rows * in), 1, ELEMENTWISE_THREADS);
  }

  /** As {@link #dequant8} for 4-bit codes. */
  public void dequant4(
      long w,
      long ldw,
      long scales,
      long zeros,
      int groupSize,
      int groupsPerRow,
      long out,
      int dtype,
      int row0,
      int rows,
      int in) {
    args.ptr(w).i64(ldw).ptr(scales).ptr(zeros).i32(groupSize).i32(groupsPerRow).ptr(out);
    args.i32(dtype).i32(row0).i32(rows).i32(in);
    launch(dequant4, "dequant4", grid((long) rows * in), 1, ELEMENTWISE_THREADS);
  }

  /** Weight kinds of {@link #mgemv}: 8-bit codes by format, 4-bit codes, dense BF16 and F16. */
  public enum MgKind {
    I8("i8"),
    E4M3("e4m3"),
    E5M2("e5m2"),
    I4("i4"),
    BF16("bf16"),
    F16("f16");

    final String suffix;

    MgKind(String suffix) {
      this.suffix = suffix;
    }

    /** The kind of 8-bit codes of format {@code fmt} ({@link #QF_INT8}, ...). */
    public static MgKind ofCodes8(int fmt) {
      return switch (fmt) {
        case QF_INT8 -> I8;
        case QF_E4M3 -> E4M3;
        case QF_E5M2 -> E5M2;
        default -> throw new IllegalArgumentException("8-bit code format " + fmt);
      };
    }
  }

  /**
   * Work split of {@link #mgemv}: output features per warp group, 16-byte runs per lane in flight,
   * and the warps of a block that split the bytes of the same features (1: each warp its own; the
   * block's {@code MG_WARPS}: more warps in flight for matrices of few, long rows).
   */
  public enum MgVariant {
    F2U2(2, 2, 1),
    F4U2(4, 2, 1),
    F4U1(4, 1, 1),
    F1U4(1, 4, 1),
    F4U1K4(4, 1, 4),
    F2U2K4(2, 2, 4);

    final int features;
    final int unroll;
    final int kSplit;

    MgVariant(int features, int unroll, int kSplit) {
      this.features = features;
      this.unroll = unroll;
      this.kSplit = kSplit;
    }

    /** Output features one block computes. */
    int featuresPerBlock() {
      return features * MG_WARPS / kSplit;
    }

    /** Whether {@link #mgemvFused} has this split for {@code kind} (the source instantiates). */
    public boolean fused(MgKind kind) {
      return dense(kind)
          ? this == F2U2 || this == F2U2K4 || this == F4U1 || this == F4U1K4
          : this == F4U2 || this == F4U1 || this == F4U1K4;
    }

    private static boolean dense(MgKind kind) {
      return kind == MgKind.BF16 || kind == MgKind.F16;
    }
  }

  /** Rows one {@link #mgemv} launch handles. */
  public static final int MGEMV_ROWS = 4;

  private static final int MG_WARPS = 4;

  /** Warps per (row, head) block of attention_wide (ATTN_WARPS in the source). */
  private static final int ATTN_WARPS = 16;

  private static String mgemvName(MgKind kind, MgVariant v) {
    return "mgemv_" + kind.suffix + "_" + v.name().toLowerCase(java.util.Locale.ROOT);
  }

  private static String mgemvFusedName(MgKind kind, MgVariant v) {
    return "mgemv_fused_" + kind.suffix + "_" + v.name().toLowerCase(java.util.Locale.ROOT);
  }

  /**
   * {@code y[r] (+)= x[r] W^T} for {@code 1 <= n <= MGEMV_ROWS} F32 rows of width {@code in}, W of
   * {@code kind} with rows {@code ldw} bytes apart (a multiple of 16): the decode product (one warp
   * per {@code variant.features} outputs, activations read once per 16-byte run for all of them).
   * Layout preconditions: a 16-byte run of codes has one scale (8-bit: one group per row or groups
   * a multiple of 16 columns; 4-bit: groups a multiple of 32 columns, {@code in} whole groups);
   * {@code in} a multiple of 16 (8-bit) or of 8 (dense). {@code scales}/{@code zeros} are ignored
   * for dense kinds; {@code zeros} 0 means zero point 8.
   */
  public void mgemv(
      MgKind kind,
      MgVariant variant,
      long w,
      long ldw,
      long scales,
      long zeros,
      int groupSize,
      int groupsPerRow,
      long x,
      long y,
      int out,
      int in,
      int n,
      boolean accumulate) {
    if (n < 1 || n > MGEMV_ROWS || ldw % 16 != 0) {
      throw new IllegalArgumentException(
          "mgemv takes 1.." + MGEMV_ROWS + " rows and 16-byte row strides, got " + n + ", " + ldw);
    }
    args.ptr(w).i64(ldw).ptr(scales).ptr(zeros).i32(groupSize).i32(groupsPerRow);
    args.ptr(x).ptr(y).i32(out).i32(in).i32(n).i32(accumulate ? 1 : 0);
    int perBlock = variant.featuresPerBlock();
    launch(
        mgemv[kind.ordinal()][variant.ordinal()],
        "mgemv",
        (out + perBlock - 1) / perBlock,
        1,
        32 * MG_WARPS);
  }

  /**
   * One matrix of a {@link #mgemvFused} launch: weights {@code w} (rows {@code ldw} bytes apart),
   * per-group {@code scales} and {@code zeros} (0 for dense kinds; zeros 0 means zero point 8),
   * output {@code y} ({@code [n][out]} F32).
   */
  public record MgMatrix(long w, long scales, long zeros, long y, int out) {}

  /**
   * The decode products that share one input, in one launch ({@code mgemv_fused}): matrices {@code
   * a}, {@code b} (may be null) and {@code c} (may be null, and null when {@code b} is) of one kind
   * and layout ({@code ldw}, {@code groupSize}, {@code groupsPerRow}, width {@code in}), each
   * {@code y (+)= x W^T} for {@code 1 <= n <= MGEMV_ROWS} rows. With {@code normW != 0} the input
   * is RMS-normalised with those weights and {@code eps}, as {@link #rmsNorm} defines it, folded
   * into the products (each warp scales its activations by the weights as it loads them, sums their
   * squares, and scales its dot products by the inverse RMS). With {@code swiglu}, {@code a} and
   * {@code b} are gate and up of the same rows, {@code c} is null, and {@code a.y} receives {@code
   * silu(gate) * up} (never accumulated). Work split {@code variant}: one {@link MgVariant#fused}
   * for the kind. Layout preconditions as {@link #mgemv}; {@code in} a multiple of 4 with a norm.
   */
  public void mgemvFused(
      MgKind kind,
      MgVariant variant,
      long ldw,
      int groupSize,
      int groupsPerRow,
      MgMatrix a,
      MgMatrix b,
      MgMatrix c,
      long x,
      int in,
      int n,
      boolean accumulate,
      long normW,
      float eps,
      boolean swiglu) {
    if (n < 1 || n > MGEMV_ROWS || ldw % 16 != 0) {
      throw new IllegalArgumentException(
          "mgemv_fused takes 1.."
              + MGEMV_ROWS
              + " rows and 16-byte strides, got "
              + n
              + ", "
              + ldw);
    }
    checkFusedMatrices("mgemv_fused", a, b, c, swiglu);
    if (!variant.fused(kind) || (swiglu && variant.features % 2 != 0)) {
      throw new IllegalArgumentException("mgemv_fused has no " + variant + " split for " + kind);
    }
    int perBlock = variant.featuresPerBlock();
    int blocks = fusedBlocks(a, b, c, swiglu, perBlock, swiglu ? perBlock / 2 : perBlock);
    matrixArgs(a);
    matrixArgs(b);
    matrixArgs(c);
    args.i64(ldw).i32(groupSize).i32(groupsPerRow).ptr(x).i32(in).i32(n);
    args.i32(accumulate ? 1 : 0).ptr(normW).f32(eps).i32(swiglu ? 1 : 0);
    launch(
        mgemvFused[kind.ordinal()][variant.ordinal()],
        "mgemv_fused",
        Math.min(blocks, fusedWave(kind, variant)),
        1,
        32 * MG_WARPS,
        0);
  }

  /**
   * Blocks of a fused launch that fit the device at once: the grid is one wave, its blocks striding
   * over the row blocks.
   */
  private int fusedWave(MgKind kind, MgVariant variant) {
    return fusedWave.computeIfAbsent(
        ((long) kind.ordinal() << 32) | variant.ordinal(),
        key -> {
          int perSm =
              device
                  .driver()
                  .activeBlocksPerMultiprocessor(
                      mgemvFused[kind.ordinal()][variant.ordinal()], 32 * MG_WARPS, 0);
          return Math.max(1, perSm) * device.multiprocessors();
        });
  }

  /**
   * @throws IllegalArgumentException if {@code b}/{@code c} are absent out of order, or {@code
   *     swiglu} lacks gate and up of equal rows (or has a third matrix)
   */
  private static void checkFusedMatrices(
      String kernel, MgMatrix a, MgMatrix b, MgMatrix c, boolean swiglu) {
    if ((b == null && c != null) || (swiglu && (b == null || c != null || b.out() != a.out()))) {
      throw new IllegalArgumentException(
          kernel
              + ": matrices b/c absent out of order, or swiglu without gate and up of equal rows");
    }
  }

  /**
   * Row blocks of a fused launch: {@code a}'s at {@code firstPerBlock} rows a block (gate and up
   * together with swiglu), then {@code b}'s (not with swiglu) and {@code c}'s at {@code perBlock}.
   */
  private static int fusedBlocks(
      MgMatrix a, MgMatrix b, MgMatrix c, boolean swiglu, int perBlock, int firstPerBlock) {
    int blocks = blocks(a.out(), firstPerBlock);
    if (!swiglu && b != null) {
      blocks += blocks(b.out(), perBlock);
    }
    if (c != null) {
      blocks += blocks(c.out(), perBlock);
    }
    return blocks;
  }

  private static int blocks(int out, int perBlock) {
    return (out + perBlock - 1) / perBlock;
  }

  private void matrixArgs(MgMatrix m) {
    if (m == null) {
      args.ptr(0).ptr(0).ptr(0).ptr(0).i32(0);
    } else {
      args.ptr(m.w()).ptr(m.scales()).ptr(m.zeros()).ptr(m.y()).i32(m.out());
    }
  }

  /**
   * As {@link #dequant8} into an F16 or BF16 tile ({@code dtype}), one thread per 16-byte run, for
   * the layouts {@link #mgemv} reads.
   */
  public void dequant8Tile(
      long w,
      long ldw,
      long scales,
      int groupSize,
      int groupsPerRow,
      int fmt,
      long out,
      int dtype,
      int row0,
      int rows,
      int in) {
    requireHalf(dtype);
    args.ptr(w).i64(ldw).ptr(scales).i32(groupSize).i32(groupsPerRow).i32(fmt).ptr(out);
    args.i32(dtype).i32(row0).i32(rows).i32(in);
    launch(dequant8Tile, "dequant8_tile", grid(rows * (ldw / 16)), 1, ELEMENTWISE_THREADS);
  }

  /** As {@link #dequant4} into an F16 or BF16 tile, for the layouts {@link #mgemv} reads. */
  public void dequant4Tile(
      long w,
      long ldw,
      long scales,
      long zeros,
      int groupSize,
      int groupsPerRow,
      long out,
      int dtype,
      int row0,
      int rows,
      int in) {
    requireHalf(dtype);
    args.ptr(w).i64(ldw).ptr(scales).ptr(zeros).i32(groupSize).i32(groupsPerRow).ptr(out);
    args.i32(dtype).i32(row0).i32(rows).i32(in);
    launch(dequant4Tile, "dequant4_tile", grid((long) rows * (in / 32)), 1, ELEMENTWISE_THREADS);
  }

  private static void requireHalf(int dtype) {
    if (dtype != DT_F16 && dtype != DT_BF16) {
      throw new IllegalArgumentException("tiles are F16 or BF16, got dtype " + dtype);
    }
  }

  /** Random bytes ANDed with {@code mask}: codes of synthetic quantized benchmark weights. */
  public void fillBytes(long out, long count, long seed, int mask) {
    args.ptr(out).i64(count).i64(seed).i32(mask);
    launch(fillBytes, "fill_bytes", grid(count), 1, ELEMENTWISE_THREADS);
  }

  // ---- mq4 / mq8: 4- and 8-bit decode products on the tensor cores (QuantizedLayout tiled)

  /**
   * Activation rows one {@link #mq} launch takes: up to 8 are the columns of one mma's B operand,
   * 9-16 take two mmas per weight fragment, 17-32 four ({@link MqVariant#K8U4} only). How many rows
   * the forward pass gives them is {@code MgemvSplits.tiledRows()}.
   */
  public static final int MQ_ROWS = 32;

  /** Kernel name infixes by mmas per fragment: one, two, four. */
  private static final String[] MQ_FRAGMENTS = {"_", "x2_", "x4_"};

  /** The fewest activation rows of each entry of {@link #MQ_FRAGMENTS}. */
  private static final int[] MQ_FRAGMENT_ROWS = {1, 9, 17};

  /** The group shift that makes every column of a row one group (per-row scales). */
  public static final int MQ_ROW_GROUP = 30;

  /** The codes of a tiled matrix, each with its kernels ({@code kvant.cu}: the prefix). */
  public enum MqCodes {
    /** INT4 group-wise and GGUF Q4_0 (64 columns per 512-byte chunk). */
    I4("mq4", 64, -1),
    /** INT8 per row or in groups (GGUF Q8_0) (32 columns per chunk). */
    I8("mq8i", 32, QF_INT8),
    /** FP8 E4M3 with per-row scales (32 columns per chunk). */
    E4M3("mq8e", 32, QF_E4M3);

    final String prefix;
    final int chunkColumns;
    // the 8-bit code format (QF_*), -1 for 4-bit codes (dequant_tiled's convention)
    final int format;

    MqCodes(String prefix, int chunkColumns, int format) {
      this.prefix = prefix;
      this.chunkColumns = chunkColumns;
      this.format = format;
    }

    /** The name prefix of these codes' kernels ({@code mq4}, {@code mq8i}, {@code mq8e}). */
    public String prefix() {
      return prefix;
    }

    /** The tiled codes of an operand of kind {@code kind}. */
    public static MqCodes of(MgKind kind) {
      return switch (kind) {
        case I4 -> I4;
        case I8 -> I8;
        case E4M3 -> E4M3;
        default -> throw new IllegalArgumentException("no tiled layout for " + kind);
      };
    }
  }

  /**
   * Work split of {@link #mq}: the warps of a block (all on one 16-row tile, splitting its 512-byte
   * chunks) and the chunks each warp has in flight.
   */
  public enum MqVariant {
    K8U4(8, 0, null),
    K16U2(16, 0, null),
    K16U4(16, 0, null),
    /**
     * Eight warps, 1-8 rows, staged ({@code mqs} in {@code kvant.cu}): the activations in F16, the
     * tile's scales and zero points in shared memory, each lane's weights eight chunks deep through
     * cp.async. Where that shared memory would exceed the device's limit, {@link #K8U4} runs.
     */
    K8S8(8, 8, K8U4),
    /**
     * As {@link #K8S8} four chunks deep: half its ring, so that up to four blocks share an SM (the
     * one-row 4-bit gate/up launch of {@code MgemvSplits.MQ_WIDE}).
     */
    K8S4(8, 4, K8U4),
    /**
     * As {@link #K8S8} with sixteen warps four chunks deep; {@link #K16U2} where it does not fit.
     */
    K16S4(16, 4, K16U2);

    final int warps;
    // chunks each lane has in flight through shared memory (staged splits), 0 for the others
    private final int depth;
    private final MqVariant fallback;

    MqVariant(int warps, int depth, MqVariant fallback) {
      this.warps = warps;
      this.depth = depth;
      this.fallback = fallback;
    }

    /**
     * Whether this split has kernels for {@code n} activation rows: the staged ones 1-8, the others
     * up to 16; above that (four mmas per fragment) only the eight-warp one, whose per-warp
     * reduction buffers stay within the 48 KiB of static shared memory (sixteen warps' would not).
     */
    public boolean takes(int n) {
      return n >= 1 && n <= (this == K8U4 ? MQ_ROWS : staged() ? 8 : 16);
    }

    /** Whether this split stages its operands in dynamic shared memory ({@link #sharedBytes}). */
    public boolean staged() {
      return depth > 0;
    }

    /**
     * The dynamic shared memory of a staged launch, in bytes: the weight ring ({@code depth} chunks
     * of 512 bytes per warp and weight stream), the scale table (16 bytes per row pair of the
     * 16-row tile and group, per stream), the {@code n} activation rows in F16 and 128 zeroed
     * bytes, and the per-warp sums of squares; 0 for the other splits.
     */
    public long sharedBytes(int in, int n, int groupsPerRow, boolean swiglu) {
      if (!staged()) {
        return 0;
      }
      int streams = swiglu ? 2 : 1;
      return (long) depth * streams * warps * 512
          + (long) streams * groupsPerRow * 8 * 16
          + 2L * n * in
          + 128
          + warps * 8 * 4;
    }

    /**
     * The split that runs a launch of these arguments on a device that lets a block opt in to
     * {@code sharedLimit} bytes: this one, or for a staged split whose {@link #sharedBytes} exceeds
     * it, its unstaged fallback.
     */
    public MqVariant forLaunch(int in, int n, int groupsPerRow, boolean swiglu, int sharedLimit) {
      return sharedBytes(in, n, groupsPerRow, swiglu) > sharedLimit ? fallback : this;
    }
  }

  /**
   * {@code y (+)= x W^T} for {@code n} F32 rows ({@link MqVariant#takes}), W tiled with {@code
   * codes}: up to three matrices sharing the input ({@code b} and {@code c} may be null, {@code c}
   * null when {@code b} is), with the RMSNorm folded in when {@code normW != 0} and gate/up +
   * SwiGLU into {@code a.y} when {@code swiglu}, as {@link #mgemvFused} defines them. The
   * activations are rounded to F16 on the way into the tensor cores (every code, less its zero
   * point, is exact in F16; products and sums are F32; the group's F32 scale multiplies each
   * group's sum). Preconditions: {@code in} a multiple of the codes' chunk (64 columns for 4-bit,
   * 32 for 8-bit); groups of {@code 1 << groupShift} columns, {@code groupShift >= 5}, dividing
   * {@code in}, or {@link #MQ_ROW_GROUP}; {@code zeros} 0 means zero point 8 (4-bit), 8-bit codes
   * have none.
   */
  public void mq(
      MqCodes codes,
      MqVariant variant,
      MgMatrix a,
      MgMatrix b,
      MgMatrix c,
      int groupShift,
      int groupsPerRow,
      long x,
      int in,
      int n,
      boolean accumulate,
      long normW,
      float eps,
      boolean swiglu) {
    boolean groups =
        groupShift == MQ_ROW_GROUP
            || (groupShift >= 5 && groupShift < MQ_ROW_GROUP && in % (1 << groupShift) == 0);
    if (!variant.takes(n) || in % codes.chunkColumns != 0 || !groups) {
      throw new IllegalArgumentException(
          codes.prefix
              + " "
              + variant
              + " takes 1.."
              + (variant.takes(MQ_ROWS) ? MQ_ROWS : variant.takes(16) ? 16 : 8)
              + " rows, widths a multiple of "
              + codes.chunkColumns
              + " and power-of-two groups of 32 or more dividing them (or one per row); got "
              + n
              + " rows, width "
              + in
              + ", group shift "
              + groupShift);
    }
    checkFusedMatrices(codes.prefix, a, b, c, swiglu);
    MqVariant run = variant.forLaunch(in, n, groupsPerRow, swiglu, device.sharedPerBlockOptIn());
    int blocks = fusedBlocks(a, b, c, swiglu, 16, 16);
    matrixArgs(a);
    matrixArgs(b);
    matrixArgs(c);
    args.i32(groupShift).i32(groupsPerRow).ptr(x).i32(in).i32(n);
    args.i32(accumulate ? 1 : 0).ptr(normW).f32(eps);
    int form = (swiglu ? 2 : 0) + (normW != 0 ? 1 : 0);
    launch(
        mq[codes.ordinal()][run.ordinal()][n > 16 ? 2 : n > 8 ? 1 : 0][form],
        codes.prefix,
        blocks,
        1,
        32 * run.warps,
        (int) run.sharedBytes(in, n, groupsPerRow, swiglu));
  }

  // ---- mqp4: one-row INT4 products on row pairs, from a second copy in the unit layout

  /** Columns of one unit of {@link #mqp}'s layout (its MQP_UNIT_COLS). */
  public static final int MQP_UNIT_COLUMNS = 1024;

  /** Bytes of one unit: 512 of codes and 8 F32 scales (its MQP_UNIT_BYTES). */
  public static final int MQP_UNIT_BYTES = 544;

  /** The group size {@link #mqp} takes (8 groups a unit). */
  public static final int MQP_GROUP = 128;

  /** Row pairs one block of {@link #mqp} multiplies (its MQP_WARPS). */
  static final int MQP_PAIRS_PER_BLOCK = 8;

  /** Most row pairs a warp of {@link #mqp} takes in turn. */
  public static final int MQP_MAX_ROUNDS = 4;

  /**
   * Blocks of one round a launch must have, per multiprocessor, before {@link #mqpRounds} gives it
   * two: two waves of three resident blocks (mqp4's 80 registers x 256 threads), so that halving
   * the grid still leaves every multiprocessor a wave of work.
   */
  static final int MQP_PAIRED_BLOCKS_PER_SM = 6;

  /**
   * Rounds for an {@link #mqp} launch over {@code pairs} row pairs in all (SwiGLU: gate/up rows): 1
   * unless {@code paired}; with it, 2 where one round would have {@link #MQP_PAIRED_BLOCKS_PER_SM}
   * blocks per multiprocessor or more (the 8B shape's gate/up: 1,792 blocks on 132 SMs), so those
   * launches stage their input half as often.
   */
  public int mqpRounds(int pairs, boolean paired) {
    return mqpRounds(pairs, paired, device.multiprocessors());
  }

  /** {@link #mqpRounds(int, boolean)} on a device of {@code multiprocessors}. */
  public static int mqpRounds(int pairs, boolean paired, int multiprocessors) {
    return paired
            && blocks(pairs, MQP_PAIRS_PER_BLOCK)
                >= (long) MQP_PAIRED_BLOCKS_PER_SM * multiprocessors
        ? 2
        : 1;
  }

  /**
   * Whether {@link #mqp} takes a tiled 4-bit matrix {@code in} wide in groups of {@code groupSize}
   * columns ({@code symmetric}: no zero points): whole units of 1,024 columns, groups of 128, and
   * an input row that fits a block's shared memory.
   */
  public boolean mqpTakes(int in, int groupSize, boolean symmetric) {
    return symmetric
        && groupSize == MQP_GROUP
        && in > 0
        && in % MQP_UNIT_COLUMNS == 0
        && mqpSharedBytes(in) <= device.sharedPerBlockOptIn();
  }

  /** Dynamic shared memory of an {@link #mqp} block: the F16 row and the warps' sums of squares. */
  static int mqpSharedBytes(int in) {
    return 2 * in + 4 * MQP_PAIRS_PER_BLOCK;
  }

  /** Bytes of the unit layout of {@code pairs} row pairs {@code in} wide. */
  public static long mqpUnitBytes(int pairs, int in) {
    return (long) pairs * (in / MQP_UNIT_COLUMNS) * 2 * MQP_UNIT_BYTES;
  }

  /**
   * Writes side {@code side} (0 or 1) of the first {@code pairs} row pairs of {@code units} (laid
   * out as {@link #mqp} reads them) from rows {@code p * rowMul + rowAdd} of a tiled 4-bit matrix
   * ({@code w}, F32 {@code scales} in groups of 128, {@code in} wide): rows (2p, 2p + 1) are {@code
   * rowMul = 2, rowAdd = 0 / 1}; gate and up rows p are {@code rowMul = 1, rowAdd = 0} from each
   * matrix.
   *
   * @throws IllegalArgumentException for a width or side {@link #mqp} does not take
   */
  public void mqpRepack(
      long w,
      long scales,
      int in,
      int groupsPerRow,
      long units,
      int pairs,
      int rowMul,
      int rowAdd,
      int side) {
    if (in <= 0
        || in % MQP_UNIT_COLUMNS != 0
        || groupsPerRow != in / MQP_GROUP
        || (side != 0 && side != 1)
        || pairs < 0) {
      throw new IllegalArgumentException(
          "mqp4_repack takes widths a multiple of 1024 in groups of 128, side 0 or 1; got width "
              + in
              + ", "
              + groupsPerRow
              + " groups a row, side "
              + side);
    }
    long words = (long) pairs * (in / MQP_UNIT_COLUMNS) * (MQP_UNIT_BYTES / 4);
    args.ptr(w).ptr(scales).i32(in).i32(groupsPerRow).ptr(units).i32(pairs);
    args.i32(rowMul).i32(rowAdd).i32(side);
    launch(mqpRepack, "mqp4_repack", grid(words), 1, ELEMENTWISE_THREADS);
  }

  /** One matrix of an {@link #mqp} launch: its units, its output and its output rows. */
  public record MqpMatrix(long units, long y, int out) {}

  /**
   * {@code y (+)= x W^T} for one F32 activation row, W symmetric INT4 in groups of 128 given as
   * {@link #mqpRepack} units ({@code kvant.cu}'s mqp4): up to three matrices sharing the input
   * ({@code b}, {@code c} as {@link #mq}'s), the RMSNorm folded in when {@code normW != 0}, and
   * with {@code swiglu} {@code a}'s units holding gate/up pairs and {@code a.y} receiving {@code
   * silu(gate) * up}. Numerics: the activations rounded to F16, each 8-column run's products summed
   * in F16, the runs scaled by their group's F32 scale and summed in F32 (to F16 rounding of {@link
   * #mq}'s result, not its bits). {@code rounds}: row pairs each warp takes in turn (1 to {@link
   * #MQP_MAX_ROUNDS}), so a block's staged input serves {@code 8 * rounds} pairs; the results do
   * not depend on it. Preconditions: {@link #mqpTakes}; each matrix's {@code out} even unless
   * {@code swiglu}.
   */
  public void mqp(
      MqpMatrix a,
      MqpMatrix b,
      MqpMatrix c,
      long x,
      int in,
      boolean accumulate,
      long normW,
      float eps,
      boolean swiglu,
      int rounds) {
    if (rounds < 1 || rounds > MQP_MAX_ROUNDS) {
      throw new IllegalArgumentException(
          "mqp4 takes 1 to " + MQP_MAX_ROUNDS + " rounds; got " + rounds);
    }
    if (in <= 0
        || in % MQP_UNIT_COLUMNS != 0
        || mqpSharedBytes(in) > device.sharedPerBlockOptIn()) {
      throw new IllegalArgumentException(
          "mqp4 takes widths a multiple of 1024 whose F16 row fits shared memory; got " + in);
    }
    if ((b == null && c != null)
        || (swiglu && (b != null || c != null))
        || (!swiglu && a.out() % 2 != 0)
        || (b != null && b.out() % 2 != 0)
        || (c != null && c.out() % 2 != 0)) {
      throw new IllegalArgumentException(
          "mqp4: matrices b/c absent out of order, odd rows, or swiglu with more than one matrix");
    }
    int per = MQP_PAIRS_PER_BLOCK * rounds;
    int blocks = blocks(swiglu ? a.out() : a.out() / 2, per);
    if (b != null) {
      blocks += blocks(b.out() / 2, per);
    }
    if (c != null) {
      blocks += blocks(c.out() / 2, per);
    }
    mqpArgs(a);
    mqpArgs(b);
    mqpArgs(c);
    args.ptr(x).i32(in).i32(accumulate ? 1 : 0).ptr(normW).f32(eps).i32(rounds);
    int form = (swiglu ? 2 : 0) + (normW != 0 ? 1 : 0);
    launch(mqp[form], "mqp4", blocks, 1, 32 * MQP_PAIRS_PER_BLOCK, mqpSharedBytes(in));
  }

  private void mqpArgs(MqpMatrix m) {
    if (m == null) {
      args.ptr(0).ptr(0).i32(0);
    } else {
      args.ptr(m.units()).ptr(m.y()).i32(m.out());
    }
  }

  /** Rows of activations a block of {@link #mqw} multiplies (mqw's MQW_NT). */
  public static final int MQW_ROWS_PER_BLOCK = 64;

  /** Weight rows of a block of {@link #mqw} (eight warps of one 16-row tile each). */
  static final int MQW_WEIGHT_ROWS = 128;

  /** Columns of one staged window of {@link #mqw} (its MQW_WIN): the largest group it takes. */
  public static final int MQW_WINDOW = 256;

  /** Dynamic shared memory of an {@link #mqw} block: two windows of 64 rows, 272 F16 apart. */
  static final int MQW_SHARED_BYTES = 2 * MQW_ROWS_PER_BLOCK * (MQW_WINDOW + 16) * 2;

  /** Blocks of one {@link #mqw} launch that can split the columns (its counters). */
  static final int MQW_COUNTERS = 1 << 16;

  /**
   * Whether {@link #mqw} takes a tiled matrix of width {@code in} with {@code codes} in groups of
   * {@code 1 << groupShift} columns: widths as {@link #mq}, groups of at most {@link #MQW_WINDOW}
   * columns or one per row (a split of the columns must not cut a group).
   */
  public static boolean mqwTakes(MqCodes codes, int in, int groupShift) {
    return in % codes.chunkColumns == 0
        && (groupShift == MQ_ROW_GROUP
            || (groupShift >= 5 && (1 << groupShift) <= MQW_WINDOW && in % (1 << groupShift) == 0));
  }

  /**
   * {@code y (+)= x W^T} for any number {@code n >= 1} of activation rows given in F16 ({@code xh
   * [n][in]}, as {@link #cast} writes them), W one tiled matrix with {@code codes} ({@code a}); the
   * wide-batch form of {@link #mq}, with its numerics (F16 activations, F32 mma sums, each group's
   * F32 scale on the group's sum). Blocks take 64 activation rows and 128 weight rows; where that
   * leaves fewer blocks than two per multiprocessor, the columns are split too, each split's sums
   * written to {@code partial} (F32, {@code splits * n * out} of them must fit in {@code
   * partialBytes}) and added in split order by the last block of each tile: the result does not
   * depend on timing. Preconditions: {@link #mqwTakes}.
   *
   * @return the column splits it ran with
   */
  public int mqw(
      MqCodes codes,
      MgMatrix a,
      int groupShift,
      int groupsPerRow,
      long xh,
      int in,
      int n,
      boolean accumulate,
      long partial,
      long partialBytes) {
    if (n < 1 || !mqwTakes(codes, in, groupShift)) {
      throw new IllegalArgumentException(
          "mqw"
              + codes.prefix.substring(2)
              + " takes widths a multiple of "
              + codes.chunkColumns
              + " and power-of-two groups of 32 to "
              + MQW_WINDOW
              + " columns dividing them (or one per row); got "
              + n
              + " rows, width "
              + in
              + ", group shift "
              + groupShift);
    }
    int bx = (a.out() + MQW_WEIGHT_ROWS - 1) / MQW_WEIGHT_ROWS;
    int by = (n + MQW_ROWS_PER_BLOCK - 1) / MQW_ROWS_PER_BLOCK;
    int splits = mqwSplits(bx, by, in, n, a.out(), partialBytes, device.multiprocessors());
    args.ptr(a.w()).ptr(a.scales()).ptr(a.zeros()).ptr(a.y()).i32(a.out());
    args.i32(groupShift).i32(groupsPerRow).ptr(xh).i32(in).i32(n).i32(accumulate ? 1 : 0);
    args.ptr(partial).ptr(mqwCounters.ptr());
    launch(mqw[codes.ordinal()], "mqw", bx, by, splits, 32 * 8, MQW_SHARED_BYTES);
    return splits;
  }

  /**
   * Column splits of an {@link #mqw} launch of {@code bx * by} blocks: enough for about two blocks
   * per multiprocessor, at least two windows a split, as many as the partial sums' buffer and the
   * counters allow (1 when they allow no more).
   */
  public static int mqwSplits(int bx, int by, int in, int n, int out, long partialBytes, int sms) {
    long blocks = (long) bx * by;
    if (blocks > MQW_COUNTERS) {
      return 1;
    }
    int windows = (in + MQW_WINDOW - 1) / MQW_WINDOW;
    long want = (2L * sms + blocks - 1) / blocks;
    int splits = (int) Math.max(1, Math.min(want, windows / 2));
    while (splits > 1 && 4L * splits * n * out > partialBytes) {
      splits--;
    }
    return splits;
  }

  /**
   * Rows {@code row0 .. row0 + rows} of a tiled matrix of {@code totalRows} rows with {@code
   * codes}, decoded into a tile {@code [rows][in]} of {@code dtype} (F32, F16 or BF16), each value
   * {@code scale * (code - zero)} (4-bit) or {@code scale * decoded code} (8-bit) in F32, then
   * rounded, as {@code QuantizedLayout.value}.
   */
  public void dequantTiled(
      MqCodes codes,
      long w,
      long scales,
      long zeros,
      int groupShift,
      int groupsPerRow,
      long out,
      int dtype,
      int row0,
      int rows,
      int totalRows,
      int in) {
    args.ptr(w).ptr(scales).ptr(zeros).i32(codes.format).i32(groupShift).i32(groupsPerRow);
    args.ptr(out).i32(dtype).i32(row0).i32(rows).i32(totalRows).i32(in);
    long words = (long) ((row0 + rows + 15) / 16 - row0 / 16) * (in / codes.chunkColumns) * 128;
    launch(dequantTiled, "dequant_tiled", grid(words), 1, ELEMENTWISE_THREADS);
  }

  /** A reusable {@code void*[]} of kernel arguments, each value in its own 8-byte slot. */
  // ---- W8A8 (io.kvant.cuda.model.W8a8Products): kept together here for merges

  /** Threads of a {@link #w8a8Quantize} block (one block per activation row). */
  private static final int W8A8_QUANTIZE_THREADS = 256;

  /**
   * Quantizes {@code n} F32 rows {@code x[n][in]} to 8-bit codes {@code codes[n][ldq]} of format
   * {@code fmt} ({@link #QF_INT8} or {@link #QF_E4M3}) with one scale per row: {@code rowScales[r]
   * = amax_r / M} ({@code M} 127 or 448; 0 for a zero row), codes of {@code x * (M / amax_r)} (INT8
   * rounded half up, clamped to +-127; E4M3 round to nearest even, saturating), the columns {@code
   * in..ldq} zero.
   */
  public void w8a8Quantize(long x, int n, int in, long codes, int ldq, long rowScales, int fmt) {
    if (fmt != QF_INT8 && fmt != QF_E4M3) {
      throw new IllegalArgumentException(
          "w8a8 activations are INT8 or FP8 E4M3, got format " + fmt);
    }
    if (n < 1 || in < 1 || ldq < in) {
      throw new IllegalArgumentException(
          "w8a8Quantize: n " + n + ", in " + in + ", ldq " + ldq + " (need n, in >= 1, ldq >= in)");
    }
    args.ptr(x).i32(in).ptr(codes).i32(ldq).ptr(rowScales).i32(fmt);
    launch(w8a8Quantize, "w8a8_quantize", n, 1, W8A8_QUANTIZE_THREADS);
  }

  /**
   * {@code y[r][c] (+)= acc[r][c] * rowScales[r] * colScales[c]} for {@code r < n}, {@code c <
   * out}: {@code acc} int32 ({@code accInt}) or F32, rows {@code ldAcc} elements apart; {@code y}
   * F32 {@code [n][out]}.
   */
  public void w8a8Epilogue(
      long acc,
      int ldAcc,
      boolean accInt,
      long rowScales,
      long colScales,
      long y,
      int out,
      int n,
      boolean accumulate) {
    if (n < 1 || out < 1 || ldAcc < out) {
      throw new IllegalArgumentException(
          "w8a8Epilogue: n " + n + ", out " + out + ", ldAcc " + ldAcc);
    }
    args.ptr(acc).i32(ldAcc).i32(accInt ? 1 : 0).ptr(rowScales).ptr(colScales).ptr(y);
    args.i32(out).i32(n).i32(accumulate ? 1 : 0);
    launch(w8a8Epilogue, "w8a8_epilogue", grid((long) n * out), 1, ELEMENTWISE_THREADS);
  }

  /**
   * The gate/up W8A8 products' epilogues, SwiGLU and the down product's {@link #w8a8Quantize} in
   * one launch: {@code h[r][c] = silu(g) * u} with {@code g = accGate[r][c] * rowScales[r] *
   * colGate[c]} and {@code u} alike (the floats {@link #w8a8Epilogue} and {@link #swiglu} compute),
   * quantized as {@link #w8a8Quantize} does into {@code codes[n][ldq]} and {@code outScales[r]}
   * (which may be {@code rowScales}). {@code accGate}, {@code accUp}: int32 ({@code accInt}) or
   * F32, rows {@code ldAcc} apart.
   */
  public void w8a8SwigluQuantize(
      long accGate,
      long accUp,
      int ldAcc,
      boolean accInt,
      long rowScales,
      long colGate,
      long colUp,
      int n,
      int in,
      long codes,
      int ldq,
      long outScales,
      int fmt) {
    if (fmt != QF_INT8 && fmt != QF_E4M3) {
      throw new IllegalArgumentException(
          "w8a8 activations are INT8 or FP8 E4M3, got format " + fmt);
    }
    if (n < 1 || in < 1 || ldAcc < in || ldq < in) {
      throw new IllegalArgumentException(
          "w8a8SwigluQuantize: n " + n + ", in " + in + ", ldAcc " + ldAcc + ", ldq " + ldq);
    }
    args.ptr(accGate).ptr(accUp).i32(ldAcc).i32(accInt ? 1 : 0).ptr(rowScales).ptr(colGate);
    args.ptr(colUp).i32(in).ptr(codes).i32(ldq).ptr(outScales).i32(fmt);
    launch(w8a8SwigluQuantize, "w8a8_swiglu_quantize", n, 1, W8A8_QUANTIZE_THREADS);
  }

  private static final class Args {
    private static final int MAX = 32;
    final MemorySegment values = Arena.ofAuto().allocate(8L * MAX, 8);
    final MemorySegment pointers = Arena.ofAuto().allocate(ADDRESS, MAX);
    private int n;

    Args() {
      for (int i = 0; i < MAX; i++) {
        pointers.setAtIndex(ADDRESS, i, values.asSlice(8L * i, 8));
      }
    }

    Args ptr(long p) {
      values.set(JAVA_LONG, 8L * n++, p);
      return this;
    }

    Args i64(long v) {
      return ptr(v);
    }

    Args i32(int v) {
      values.set(JAVA_INT, 8L * n++, v);
      return this;
    }

    Args f32(float v) {
      values.set(JAVA_FLOAT, 8L * n++, v);
      return this;
    }

    void reset() {
      n = 0;
    }
  }
}
