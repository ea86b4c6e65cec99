package io.kvant.server.transport;

import io.grpc.Server;
import io.grpc.ServerCredentials;
import io.grpc.ServerServiceDefinition;
import io.grpc.netty.NettyServerBuilder;
import io.kvant.server.config.ServerConfig;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import java.io.IOException;
import java.lang.System.Logger;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * The gRPC servers of one kvant process: TCP on {@code host:port} and/or a Unix domain socket, all
 * serving the same service definitions (so every transport shares the scheduler, limits, auth and
 * metrics).
 *
 * <p>Design note: a Netty server binds one channel type, and TCP ({@code EpollServerSocketChannel})
 * and Unix sockets ({@code EpollServerDomainSocketChannel}) are different types, so each transport
 * is its own {@link Server} over the shared event loops. The socket file is created at start (a
 * stale one left by a killed process is replaced, but never a socket some process still accepts on,
 * nor a file that is not a socket), readable and writable by kvant's user and group only, and
 * removed at shutdown.
 */
public final class GrpcListeners {
  private static final Logger LOG = System.getLogger("io.kvant.server");

  private final List<EventLoopGroup> eventLoops = new ArrayList<>();
  private final List<Server> servers = new ArrayList<>();
  private Server tcp;
  private Optional<Path> socket = Optional.empty();

  private GrpcListeners() {}

  /**
   * Starts a server for each configured transport.
   *
   * @param configure applied to each builder (message size limits and the like)
   * @throws IOException if an address cannot be bound, or the socket path is taken
   */
  public static GrpcListeners start(
      ServerConfig config,
      ServerCredentials credentials,
      List<ServerServiceDefinition> services,
      java.util.function.Consumer<NettyServerBuilder> configure)
      throws IOException {
    GrpcListeners l = new GrpcListeners();
    try {
      ServerConfig.Listen listen = config.listen();
      EventLoopGroup boss = null;
      EventLoopGroup workers = null;
      if (Epoll.isAvailable()) {
        boss = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
        workers = new MultiThreadIoEventLoopGroup(0, EpollIoHandler.newFactory());
        l.eventLoops.add(boss);
        l.eventLoops.add(workers);
      }
      if (listen.tcp()) {
        NettyServerBuilder b =
            NettyServerBuilder.forAddress(
                new InetSocketAddress(config.host(), config.port()), credentials);
        if (boss != null) {
          b.channelType(EpollServerSocketChannel.class)
              .bossEventLoopGroup(boss)
              .workerEventLoopGroup(workers);
        }
        l.tcp = l.add(b, services, configure);
      }
      if (listen.unixSocket().isPresent()) {
        Path path = listen.unixSocket().get().toAbsolutePath();
        if (boss == null) {
          throw new IOException(
              "listen "
                  + path
                  + ": Unix sockets need Linux epoll, which is not available: "
                  + Epoll.unavailabilityCause());
        }
        prepareSocketPath(path);
        NettyServerBuilder b =
            NettyServerBuilder.forAddress(new DomainSocketAddress(path.toString()), credentials)
                .channelType(EpollServerDomainSocketChannel.class)
                .bossEventLoopGroup(boss)
                .workerEventLoopGroup(workers);
        l.add(b, services, configure);
        l.socket = Optional.of(path);
        // Connecting needs write permission on the socket file: the owner and its group (in the
        // chart, the pod's fsGroup, which the application container shares), nobody else.
        Files.setPosixFilePermissions(path, PosixFilePermissions.fromString("rw-rw----"));
        LOG.log(Level.INFO, "gRPC listening on unix://{0}", path);
      }
      return l;
    } catch (IOException | RuntimeException e) {
      // Nothing left behind: no server, no event loop thread, no socket file of ours.
      l.shutdownNow();
      l.release();
      throw e;
    }
  }

  private Server add(
      NettyServerBuilder b,
      List<ServerServiceDefinition> services,
      java.util.function.Consumer<NettyServerBuilder> configure)
      throws IOException {
    services.forEach(b::addService);
    configure.accept(b);
    Server s = b.build().start();
    servers.add(s);
    return s;
  }

  /**
   * Makes {@code path} free for a new socket: its folder must exist; a socket file nobody accepts
   * on (left by a killed process) is removed; anything else there is an error.
   */
  static void prepareSocketPath(Path path) throws IOException {
    Path dir = path.getParent();
    if (dir == null || !Files.isDirectory(dir)) {
      throw new IOException("listen " + path + ": folder " + dir + " does not exist");
    }
    if (!Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    BasicFileAttributes a =
        Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
    if (!a.isOther()) {
      throw new IOException(
          "listen " + path + ": a file that is not a socket is in the way; not replacing it");
    }
    boolean live;
    try (SocketChannel probe = SocketChannel.open(StandardProtocolFamily.UNIX)) {
      probe.connect(UnixDomainSocketAddress.of(path));
      live = true;
    } catch (java.net.SocketException e) {
      live = false; // refused: a stale file nothing accepts on
    }
    if (live) {
      throw new IOException("listen " + path + ": another process is serving on this socket");
    }
    Files.delete(path);
  }

  /** The TCP port, or -1 when not listening on TCP. */
  public int port() {
    return tcp == null ? -1 : tcp.getPort();
  }

  /** The Unix socket file, when listening on one. */
  public Optional<Path> unixSocket() {
    return socket;
  }

  /** Stops accepting; calls in flight continue. */
  public void shutdown() {
    servers.forEach(Server::shutdown);
  }

  /** Waits up to {@code timeout} for every server to finish its calls. */
  public boolean awaitTermination(long timeout, TimeUnit unit) throws InterruptedException {
    long deadline = System.nanoTime() + unit.toNanos(timeout);
    boolean all = true;
    for (Server s : servers) {
      all &= s.awaitTermination(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
    }
    return all;
  }

  /** Cancels calls in flight. */
  public void shutdownNow() {
    servers.forEach(Server::shutdownNow);
  }

  /** Releases the event loops and removes the socket file; call after the servers stopped. */
  public void release() {
    for (EventLoopGroup g : eventLoops) {
      g.shutdownGracefully(0, 2, TimeUnit.SECONDS);
    }
    socket.ifPresent(
        p -> {
          try {
            Files.deleteIfExists(p);
          } catch (IOException e) {
            LOG.log(Level.WARNING, "could not remove socket " + p + ": " + e.getMessage());
          }
        });
  }
}
