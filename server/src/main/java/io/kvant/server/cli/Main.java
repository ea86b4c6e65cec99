package io.kvant.server.cli;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The {@code kvant} command line: dispatches a subcommand to its implementation.
 *
 * <p>Contract: {@link #run} returns the process exit code; 0 on success, 2 on a usage error, 1 when
 * the subcommand failed. It never calls {@link System#exit} so tests can drive it.
 */
public final class Main {
  private final PrintStream out;
  private final PrintStream err;
  private final Map<String, Function<List<String>, Integer>> commands;

  Main(PrintStream out, PrintStream err, Map<String, Function<List<String>, Integer>> commands) {
    this.out = out;
    this.err = err;
    this.commands = commands;
  }

  public static void main(String[] args) {
    int code = standard(System.out, System.err).run(args);
    System.exit(code);
  }

  /** The real commands, with the process environment (tests drive the CLI through this). */
  public static Main standard(PrintStream out, PrintStream err) {
    Map<String, String> env = System.getenv();
    return new Main(
        out,
        err,
        Map.of(
            "generate", args -> new GenerateCommand(out, err, env).run(args),
            "eval", args -> new EvalCommand(out, err, env).run(args),
            "quantize", args -> new QuantizeCommand(out, err, env).run(args),
            "serve", args -> new ServeCommand(out, err, env).run(args),
            "agent", args -> new AgentCommand(out, err, env).run(args)));
  }

  /** Runs one subcommand and returns its exit code. */
  public int run(String[] args) {
    if (args.length == 0 || args[0].equals("help") || args[0].equals("--help")) {
      out.print(usage());
      return args.length == 0 ? 2 : 0;
    }
    String name = args[0];
    List<String> rest = Arrays.asList(args).subList(1, args.length);
    Function<List<String>, Integer> command = commands.get(name);
    if (command != null) {
      return command.apply(rest);
    }
    err.println("kvant: unknown command '" + name + "'");
    err.print(usage());
    return 2;
  }

  static String usage() {
    return Usage.TEXT;
  }
}
