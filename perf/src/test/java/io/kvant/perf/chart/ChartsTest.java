package io.kvant.perf.chart;

import static org.assertj.core.api.Assertions.assertThat;

import io.kvant.perf.load.BenchResult;
import io.kvant.perf.load.RequestRecord;
import io.kvant.perf.load.Slo;
import io.kvant.perf.load.Summary;
import java.awt.image.BufferedImage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ChartsTest {
  @TempDir Path dir;

  private static List<RequestRecord> records(int n, double scale, SplittableRandom rnd) {
    List<RequestRecord> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      double ttft = scale * (5 + rnd.nextDouble() * 10);
      out.add(
          new RequestRecord(
              i,
              i * 7.0,
              i != 3,
              i != 3 ? "" : "UNAVAILABLE",
              ttft,
              ttft + 50 * scale,
              10,
              0,
              8,
              new double[] {scale, 2 * scale},
              "v1"));
    }
    return out;
  }

  @Test
  void sweepAndSwapChartsArePngsOfTheAskedSize() throws Exception {
    SplittableRandom rnd = new SplittableRandom(1);
    List<BenchResult.Point> points = new ArrayList<>();
    for (int c : new int[] {1, 2, 4, 8}) {
      List<RequestRecord> rs = records(40, c, rnd);
      points.add(
          new BenchResult.Point(c, 0, Summary.of(rs, 2.0 / c, Slo.NONE), c == 8 ? rs : List.of()));
    }
    BenchResult result =
        new BenchResult(
            "serve",
            "127.0.0.1:1",
            "now",
            Map.of(),
            points,
            List.of(new BenchResult.SwapEvent("v2", 100, 130, true, "v2")),
            List.of());
    List<Path> files = new Charts(640, 480).writeAll(result, dir.resolve("charts"));
    assertThat(files)
        .extracting(p -> p.getFileName().toString())
        .containsExactly(
            "cdf-ttft.png",
            "cdf-tpot.png",
            "cdf-itl.png",
            "cdf-e2e.png",
            "sweep-throughput.png",
            "sweep-p99.png",
            "ttft-over-time.png");
    for (Path f : files) {
      assertThat(Files.size(f)).as(f.toString()).isGreaterThan(2000);
      BufferedImage img = ImageIO.read(f.toFile());
      assertThat(img.getWidth()).isEqualTo(640);
      assertThat(img.getHeight()).isEqualTo(480);
    }
  }

  @Test
  void singlePointWithoutRecordsGivesOnlyCdfs() throws Exception {
    BenchResult result =
        new BenchResult(
            "serve",
            "t",
            "now",
            Map.of(),
            List.of(new BenchResult.Point(1, 0, Summary.of(List.of(), 1, Slo.NONE), List.of())),
            List.of(),
            List.of());
    List<Path> files = new Charts(300, 200).writeAll(result, dir);
    assertThat(files).hasSize(4);
    assertThat(ImageIO.read(files.getFirst().toFile()).getWidth()).isEqualTo(300);
  }
}
