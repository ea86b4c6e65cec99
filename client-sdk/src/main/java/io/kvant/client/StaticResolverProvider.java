package io.kvant.client;

import io.grpc.EquivalentAddressGroup;
import io.grpc.NameResolver;
import io.grpc.NameResolverProvider;
import io.grpc.Status;
import io.grpc.StatusOr;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;

/**
 * Resolves a fixed list of {@code host:port} targets, one address group per target, so that the
 * {@code round_robin} policy spreads calls over them. grpc-java has no built-in scheme for a list
 * of addresses, and encoding one in a URI breaks on IPv6 literals, so the list lives in the
 * provider instance, which is registered in a registry private to one channel (never in the global
 * one).
 *
 * <p>Host names are looked up on every resolution (at start and whenever gRPC asks for a refresh
 * after a connection failure), off the channel's synchronization context.
 */
final class StaticResolverProvider extends NameResolverProvider {
  static final String SCHEME = "kvant-static";

  /** One target of the list. */
  record HostPort(String host, int port) {
    /**
     * Parses {@code host:port} or {@code [v6]:port}.
     *
     * @throws IllegalArgumentException if there is no valid port or no host
     */
    static HostPort parse(String target) {
      int colon = target.lastIndexOf(':');
      if (colon <= 0 || colon == target.length() - 1) {
        throw new IllegalArgumentException(
            "target: must be host:port or a resolver URI such as dns:///host:port, got '"
                + target
                + "'");
      }
      String host = target.substring(0, colon);
      if (host.startsWith("[") && host.endsWith("]")) {
        host = host.substring(1, host.length() - 1);
      } else if (host.contains(":")) {
        throw new IllegalArgumentException(
            "target: an IPv6 address must be in brackets, e.g. [::1]:50051, got '" + target + "'");
      }
      int port;
      try {
        port = Integer.parseInt(target.substring(colon + 1));
      } catch (NumberFormatException e) {
        port = -1;
      }
      if (port < 1 || port > 65535) {
        throw new IllegalArgumentException(
            "target: port must be in [1, 65535], got '" + target + "'");
      }
      return new HostPort(host, port);
    }
  }

  private final List<HostPort> targets;
  private final String authority;

  StaticResolverProvider(List<HostPort> targets, String authority) {
    this.targets = List.copyOf(targets);
    this.authority = authority;
  }

  @Override
  protected boolean isAvailable() {
    return true;
  }

  @Override
  protected int priority() {
    return 5;
  }

  @Override
  public String getDefaultScheme() {
    return SCHEME;
  }

  @Override
  public NameResolver newNameResolver(URI targetUri, NameResolver.Args args) {
    if (!SCHEME.equals(targetUri.getScheme())) {
      return null;
    }
    return new Resolver(args);
  }

  private final class Resolver extends NameResolver {
    private final Args args;
    private Listener2 listener;
    private boolean resolving;
    private boolean shutdown;

    Resolver(Args args) {
      this.args = args;
    }

    @Override
    public String getServiceAuthority() {
      return authority;
    }

    @Override
    public void start(Listener2 listener) {
      this.listener = listener;
      resolve();
    }

    @Override
    public void refresh() {
      resolve();
    }

    /** Runs in the synchronization context, like every other method of a resolver. */
    private void resolve() {
      if (resolving || shutdown) {
        return;
      }
      resolving = true;
      Executor offload = args.getOffloadExecutor();
      Runnable lookup =
          () -> {
            StatusOr<List<EquivalentAddressGroup>> result = lookUp();
            args.getSynchronizationContext()
                .execute(
                    () -> {
                      resolving = false;
                      if (!shutdown) {
                        listener.onResult2(
                            ResolutionResult.newBuilder().setAddressesOrError(result).build());
                      }
                    });
          };
      if (offload != null) {
        offload.execute(lookup);
      } else {
        lookup.run();
      }
    }

    private StatusOr<List<EquivalentAddressGroup>> lookUp() {
      List<EquivalentAddressGroup> groups = new ArrayList<>(targets.size());
      List<String> failed = new ArrayList<>();
      for (HostPort t : targets) {
        try {
          List<java.net.SocketAddress> addresses = new ArrayList<>();
          for (InetAddress a : InetAddress.getAllByName(t.host())) {
            addresses.add(new InetSocketAddress(a, t.port()));
          }
          groups.add(new EquivalentAddressGroup(addresses));
        } catch (UnknownHostException e) {
          failed.add(t.host());
        }
      }
      if (groups.isEmpty()) {
        // Only fail when nothing resolves: one bad name must not take the good ones down.
        return StatusOr.fromStatus(
            Status.UNAVAILABLE.withDescription("cannot resolve any of the hosts " + failed));
      }
      return StatusOr.fromValue(groups);
    }

    @Override
    public void shutdown() {
      shutdown = true;
    }
  }
}
