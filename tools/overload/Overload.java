import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import io.kvant.api.v1.GenerateRequest;
import io.kvant.api.v1.GenerationGrpc;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Issue 17, item 3, measured: 16 concurrent 1 MiB text prompts against a running kvant (all
 * refused), and small requests meanwhile; prints the server process CPU the burst cost (from
 * /proc/PID/stat) and the small requests' latencies alone and during the burst. Bounded: 20 + 20
 * small requests, 16 big ones, one round. Usage (perf/RESULTS.md):
 * {@code java -cp "$(cat server/target/classpath.txt)" tools/overload/Overload.java PORT SERVER_PID}
 */
public class Overload {
  static double cpuSeconds(long pid) throws Exception {
    String[] f = Files.readString(Path.of("/proc/" + pid + "/stat")).split("\\) ")[1].split(" ");
    return (Long.parseLong(f[11]) + Long.parseLong(f[12])) / 100.0; // utime + stime, clock ticks
  }

  static long small(GenerationGrpc.GenerationBlockingStub s) {
    long t = System.nanoTime();
    s.withDeadlineAfter(60, TimeUnit.SECONDS)
        .generate(GenerateRequest.newBuilder().setText("And God said").setMaxTokens(16).build());
    return (System.nanoTime() - t) / 1_000_000;
  }

  public static void main(String[] a) throws Exception {
    int port = Integer.parseInt(a[0]);
    long pid = Long.parseLong(a[1]);
    ManagedChannel ch = NettyChannelBuilder.forAddress("127.0.0.1", port).usePlaintext().build();
    var stub = GenerationGrpc.newBlockingStub(ch);
    for (int i = 0; i < 20; i++) {
      small(stub); // warm-up
    }
    long[] base = new long[20];
    for (int i = 0; i < base.length; i++) {
      base[i] = small(stub);
    }
    String mib = "And it came to pass ".repeat((1 << 20) / 20);
    double cpu0 = cpuSeconds(pid);
    long t0 = System.nanoTime();
    List<Thread> ts = new ArrayList<>();
    List<String> codes = java.util.Collections.synchronizedList(new ArrayList<>());
    for (int i = 0; i < 16; i++) {
      Thread t =
          new Thread(
              () -> {
                try {
                  stub.withDeadlineAfter(120, TimeUnit.SECONDS)
                      .generate(GenerateRequest.newBuilder().setText(mib).setMaxTokens(16).build());
                  codes.add("OK");
                } catch (io.grpc.StatusRuntimeException e) {
                  codes.add(e.getStatus().getCode() + ": " + e.getStatus().getDescription());
                }
              });
      t.start();
      ts.add(t);
    }
    List<Long> during = new ArrayList<>();
    while (ts.stream().anyMatch(Thread::isAlive)) {
      during.add(small(stub));
    }
    for (Thread t : ts) {
      t.join();
    }
    double wall = (System.nanoTime() - t0) / 1e9;
    double cpu = cpuSeconds(pid) - cpu0;
    Arrays.sort(base);
    System.out.printf("big: %d answers, first: %s%n", codes.size(), codes.get(0));
    System.out.printf(
        "big phase: wall %.2f s, server CPU %.2f s (includes %d small requests)%n",
        wall, cpu, during.size());
    System.out.printf(
        "small alone: median %d ms, max %d ms; during: %s ms%n",
        base[base.length / 2], base[base.length - 1], during);
    ch.shutdownNow();
  }
}
