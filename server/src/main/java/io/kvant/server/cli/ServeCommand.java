package io.kvant.server.cli;

import io.kvant.server.KvantServer;
import io.kvant.server.config.ConfigException;
import io.kvant.server.config.ConfigLoader;
import io.kvant.server.config.ServerConfig;
import java.io.IOException;
import java.io.PrintStream;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import sun.misc.Signal;

/**
 * {@code kvant serve}: runs the sidecar until SIGTERM or SIGINT, then drains and exits 0.
 *
 * <p>The signal handlers replace the JVM's default (which would exit with 143 without draining):
 * they start the graceful shutdown and the command returns once it has finished.
 */
final class ServeCommand {
  private final PrintStream out;
  private final PrintStream err;
  private final Map<String, String> env;

  ServeCommand(PrintStream out, PrintStream err, Map<String, String> env) {
    this.out = out;
    this.err = err;
    this.env = env;
  }

  int run(List<String> args) {
    if (args.contains("--help")) {
      out.print(ConfigLoader.flagHelp());
      return 0;
    }
    ServerConfig config;
    try {
      config = new ConfigLoader(env).load(args);
    } catch (ConfigException e) {
      err.println("kvant serve: " + e.getMessage());
      return 2;
    }
    LogFormat.install(config.interop().logFormat());
    KvantServer server;
    try {
      server = KvantServer.start(config, Clock.systemUTC(), Optional.empty());
    } catch (IOException | RuntimeException e) {
      err.println("kvant serve: " + e.getMessage());
      return 1;
    }
    Runnable stop =
        () -> Thread.ofPlatform().name("kvant-shutdown").start(server::shutdownGracefully);
    Signal.handle(new Signal("TERM"), s -> stop.run());
    Signal.handle(new Signal("INT"), s -> stop.run());
    List<String> where = new ArrayList<>();
    if (server.port() >= 0) {
      where.add(config.host() + ":" + server.port());
    }
    server.unixSocket().ifPresent(p -> where.add("unix://" + p));
    out.printf(
        "kvant: serving model %s (version %s) on %s%s%s%n",
        config.model().name(),
        server.models().find("").orElseThrow().serving().id(),
        String.join(" and ", where),
        server.metricsPort() > 0 ? ", metrics on :" + server.metricsPort() + "/metrics" : "",
        server.httpPort() > 0 ? ", OpenAI-compatible HTTP on :" + server.httpPort() + "/v1" : "");
    out.flush();
    server.awaitTermination();
    out.println("kvant: stopped");
    return 0;
  }
}
