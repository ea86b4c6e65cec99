package io.kvant.perf.chart;

import io.kvant.perf.load.BenchResult;
import io.kvant.perf.load.BenchResult.Point;
import io.kvant.perf.load.BenchResult.SwapEvent;
import io.kvant.perf.load.LatencyStats;
import io.kvant.perf.load.RequestRecord;
import io.kvant.perf.load.Summary;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import java.util.function.ToDoubleFunction;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * PNG charts of a {@link BenchResult}, drawn with XChart: latency CDFs (one curve per point),
 * throughput and p99 latency against concurrency for a sweep, and TTFT over time with swaps marked
 * when per-request records are kept.
 */
public final class Charts {
  private final int width;
  private final int height;

  /** Charts of {@code width x height} pixels. */
  public Charts(int width, int height) {
    if (width < 100 || height < 100) {
      throw new IllegalArgumentException("charts need at least 100x100 pixels");
    }
    this.width = width;
    this.height = height;
  }

  /** Writes every chart the result supports into {@code dir}; returns the files written. */
  public List<Path> writeAll(BenchResult result, Path dir) throws IOException {
    Files.createDirectories(dir);
    List<Path> files = new ArrayList<>();
    files.add(save(cdf(result, "Time to first token", Summary::ttft), dir.resolve("cdf-ttft.png")));
    files.add(
        save(cdf(result, "Time per output token", Summary::tpot), dir.resolve("cdf-tpot.png")));
    files.add(save(cdf(result, "Inter-token latency", Summary::itl), dir.resolve("cdf-itl.png")));
    files.add(save(cdf(result, "End-to-end latency", Summary::e2e), dir.resolve("cdf-e2e.png")));
    if (result.points().size() > 1) {
      files.add(save(throughputVsConcurrency(result), dir.resolve("sweep-throughput.png")));
      files.add(save(p99VsConcurrency(result), dir.resolve("sweep-p99.png")));
    }
    if (result.points().stream().anyMatch(p -> !p.records().isEmpty())) {
      files.add(save(ttftOverTime(result), dir.resolve("ttft-over-time.png")));
    }
    return files;
  }

  /** CDF of one metric: x latency (ms), y fraction of requests, one curve per point. */
  public XYChart cdf(BenchResult r, String title, Function<Summary, LatencyStats> metric) {
    XYChart c = chart(title + " (CDF)", title + " (ms)", "fraction of requests");
    c.getStyler().setLegendPosition(Styler.LegendPosition.InsideSE);
    double[] y = new double[101];
    for (int p = 0; p <= 100; p++) {
      y[p] = p / 100.0;
    }
    for (Point p : r.points()) {
      LatencyStats s = metric.apply(p.summary());
      if (s.count() == 0) {
        continue;
      }
      line(c, label(p), s.cdf(), y);
    }
    placeholder(c);
    return c;
  }

  /** Output-token and request throughput against concurrency. */
  public XYChart throughputVsConcurrency(BenchResult r) {
    XYChart c = chart("Throughput vs concurrency", "concurrency", "output tokens/s");
    double[] x = xs(r);
    line(c, "output tok/s", x, ys(r, Summary::outputTokenThroughput));
    XYSeries req = line(c, "requests/s (right axis)", x, ys(r, Summary::requestThroughput));
    req.setYAxisGroup(1);
    c.setYAxisGroupTitle(1, "requests/s");
    return c;
  }

  /** p99 TTFT, TPOT and end-to-end latency against concurrency. */
  public XYChart p99VsConcurrency(BenchResult r) {
    XYChart c = chart("p99 latency vs concurrency", "concurrency", "p99 latency (ms)");
    double[] x = xs(r);
    line(c, "p99 TTFT", x, ys(r, s -> s.ttft().p99()));
    line(c, "p99 TPOT", x, ys(r, s -> s.tpot().p99()));
    line(c, "p99 ITL", x, ys(r, s -> s.itl().p99()));
    line(c, "p99 E2E", x, ys(r, s -> s.e2e().p99()));
    c.getStyler().setYAxisLogarithmic(allPositive(c));
    return c;
  }

  /** TTFT of each request against its start time; swaps as vertical lines. */
  public XYChart ttftOverTime(BenchResult r) {
    XYChart c = chart("TTFT over time", "request start (s)", "TTFT (ms)");
    c.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
    c.getStyler().setMarkerSize(4);
    double maxY = 1;
    for (Point p : r.points()) {
      List<RequestRecord> ok =
          p.records().stream().filter(RequestRecord::ok).filter(q -> q.ttftMs() >= 0).toList();
      List<RequestRecord> failed = p.records().stream().filter(q -> !q.ok()).toList();
      if (!ok.isEmpty()) {
        double[] x = ok.stream().mapToDouble(q -> q.startMs() / 1e3).toArray();
        double[] y = ok.stream().mapToDouble(RequestRecord::ttftMs).toArray();
        c.addSeries(label(p), x, y).setMarker(SeriesMarkers.CIRCLE);
        for (double v : y) {
          maxY = Math.max(maxY, v);
        }
      }
      if (!failed.isEmpty()) {
        double[] x = failed.stream().mapToDouble(q -> q.startMs() / 1e3).toArray();
        double[] y = new double[x.length];
        c.addSeries("failed (" + label(p) + ")", x, y).setMarker(SeriesMarkers.CROSS);
      }
    }
    int i = 0;
    for (SwapEvent s : r.swaps()) {
      double x = s.startMs() / 1e3;
      XYSeries line =
          c.addSeries(
              "swap " + (++i) + (s.ok() ? "" : " (failed)") + " -> " + s.target(),
              new double[] {x, x},
              new double[] {0, maxY});
      line.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
      line.setMarker(SeriesMarkers.NONE);
    }
    placeholder(c);
    return c;
  }

  /** Encodes a chart as PNG bytes. */
  public static void writePng(XYChart chart, OutputStream out) throws IOException {
    BitmapEncoder.saveBitmap(chart, out, BitmapEncoder.BitmapFormat.PNG);
  }

  private Path save(XYChart chart, Path file) throws IOException {
    try (OutputStream out = Files.newOutputStream(file)) {
      writePng(chart, out);
    }
    return file;
  }

  private XYChart chart(String title, String x, String y) {
    XYChart c =
        new XYChartBuilder()
            .width(width)
            .height(height)
            .title(title)
            .xAxisTitle(x)
            .yAxisTitle(y)
            .build();
    c.getStyler().setChartBackgroundColor(java.awt.Color.WHITE);
    c.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
    return c;
  }

  private static XYSeries line(XYChart c, String name, double[] x, double[] y) {
    XYSeries s = c.addSeries(name, x, y);
    s.setXYSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Line);
    s.setMarker(SeriesMarkers.CIRCLE);
    return s;
  }

  /** XChart cannot draw a chart without series; an empty one gets an invisible point. */
  private static void placeholder(XYChart c) {
    if (c.getSeriesCollection().isEmpty()) {
      c.addSeries("no data", new double[] {0}, new double[] {0}).setMarker(SeriesMarkers.NONE);
    }
  }

  private static boolean allPositive(XYChart c) {
    return c.getSeriesCollection().stream()
        .allMatch(s -> java.util.Arrays.stream(s.getYData()).allMatch(v -> v > 0));
  }

  private static String label(Point p) {
    return p.rate() > 0
        ? (Double.isInfinite(p.rate()) ? "rate inf" : String.format("rate %.3g/s", p.rate()))
            + (p.concurrency() > 0 ? ", max " + p.concurrency() : "")
        : "concurrency " + p.concurrency();
  }

  private static double[] xs(BenchResult r) {
    return r.points().stream().mapToDouble(Point::concurrency).toArray();
  }

  private static double[] ys(BenchResult r, ToDoubleFunction<Summary> f) {
    return r.points().stream().map(Point::summary).mapToDouble(f).toArray();
  }
}
