package io.kvant.cuda.model;

import io.kvant.cuda.device.CudaDevice;
import io.kvant.cuda.device.CudaKernels;
import io.kvant.cuda.device.DeviceBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Second copies of a model's one-row INT4 matrices in {@code mqp4}'s unit layout ({@link
 * CudaKernels#mqp}), for {@link MgemvSplits#MQ_WIDE_UNITS}: every layer matrix that is tiled,
 * symmetric INT4 in groups of 128, whole units of 1,024 columns wide, of an even number of rows
 * below the output head; gate and up together as one buffer of (gate i, up i) pairs. Built once, on
 * the device from the tiled codes ({@link CudaKernels#mqpRepack}), keyed by the tiled codes' device
 * address; the tiled matrices stay, for every other row count. The copies cost as much device
 * memory as those matrices' codes and scales again, which is why they exist only under that policy,
 * for comparing.
 */
final class MqpUnits implements AutoCloseable {
  private final Map<Long, DeviceBuffer> pairs = new HashMap<>();
  private final Map<Long, DeviceBuffer> gateUp = new HashMap<>();
  private final List<DeviceBuffer> owned = new ArrayList<>();
  private long bytes;

  /** Repacks every matrix of {@code model} that {@code mqp4} takes (see the class comment). */
  MqpUnits(CudaDevice device, CudaKernels k, DeviceModel model) {
    for (DeviceModel.Layer l : model.layers()) {
      for (DeviceTensor t : new DeviceTensor[] {l.wq(), l.wk(), l.wv(), l.wo(), l.down()}) {
        if (takes(k, t) && t.rows() % 2 == 0 && !pairs.containsKey(t.ptr())) {
          DeviceBuffer u = allocate(device, t.rows() / 2, t.cols());
          repack(k, t, u, t.rows() / 2, 2, 0, 0);
          repack(k, t, u, t.rows() / 2, 2, 1, 1);
          pairs.put(t.ptr(), u);
        }
      }
      DeviceTensor g = l.gate();
      DeviceTensor up = l.up();
      if (takes(k, g)
          && takes(k, up)
          && g.rows() == up.rows()
          && g.cols() == up.cols()
          && !gateUp.containsKey(g.ptr())) {
        DeviceBuffer u = allocate(device, g.rows(), g.cols());
        repack(k, g, u, g.rows(), 1, 0, 0);
        repack(k, up, u, g.rows(), 1, 0, 1);
        gateUp.put(g.ptr(), u);
      }
    }
  }

  /** Whether {@code mqp4} takes {@code t} (before the pairing of its rows). */
  static boolean takes(CudaKernels k, DeviceTensor t) {
    if (t == null || !t.quantized()) {
      return false;
    }
    DeviceTensor.DeviceQuant q = t.quant();
    return q.tiled()
        && q.bits() == 4
        && t.rows() < MgemvSplits.HEAD_ROWS
        && k.mqpTakes(t.cols(), q.groupSize(), q.zeros() == null);
  }

  private DeviceBuffer allocate(CudaDevice device, int pairCount, int in) {
    long n = CudaKernels.mqpUnitBytes(pairCount, in);
    DeviceBuffer b = device.allocate(n);
    owned.add(b);
    bytes += n;
    return b;
  }

  private static void repack(
      CudaKernels k,
      DeviceTensor t,
      DeviceBuffer units,
      int pairCount,
      int mul,
      int add,
      int side) {
    DeviceTensor.DeviceQuant q = t.quant();
    k.mqpRepack(
        t.ptr(),
        q.scales().ptr(),
        t.cols(),
        q.groupsPerRow(),
        units.ptr(),
        pairCount,
        mul,
        add,
        side);
  }

  /** The units of the matrix whose tiled codes are at {@code codes}, rows in pairs; 0 if none. */
  long pairs(long codes) {
    DeviceBuffer b = pairs.get(codes);
    return b == null ? 0L : b.ptr();
  }

  /**
   * The (gate, up) units of the gate matrix whose tiled codes are at {@code gateCodes}; 0 if none.
   */
  long gateUp(long gateCodes) {
    DeviceBuffer b = gateUp.get(gateCodes);
    return b == null ? 0L : b.ptr();
  }

  /** Device bytes the copies hold. */
  long bytes() {
    return bytes;
  }

  @Override
  public void close() {
    for (DeviceBuffer b : owned) {
      b.close();
    }
    owned.clear();
    pairs.clear();
    gateUp.clear();
  }
}
