package io.kvant.server.http;

import io.kvant.server.grpc.Admission;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpServerKeepAliveHandler;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.opentelemetry.context.propagation.ContextPropagators;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Clock;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * The OpenAI-compatible HTTP/1.1 API on its own port, on plain Netty (see docs/DECISIONS.md): one
 * event loop accepts and serves connections; requests go to the shared {@link Admission}. TLS (and
 * mutual TLS) uses the same PEM files as the gRPC port.
 */
public final class OpenAiHttpServer implements AutoCloseable {
  /** Chunks a stream may queue before deltas are merged, as for gRPC streams. */
  static final int OUTBOX_CAPACITY = 16;

  /** A writer is "slow" once this many bytes wait in its connection's outbound buffer. */
  static final int HIGH_WATER_BYTES = 64 << 10;

  private final EventLoopGroup boss;
  private final EventLoopGroup workers;
  private final Channel channel;

  /**
   * Binds and starts serving.
   *
   * @param maxBodyBytes largest accepted request body (413 above it)
   * @param token the Generation bearer token, when one is configured
   * @param tls certificate chain and key (PEM), and the client CA for mutual TLS
   * @throws IOException when the port cannot be bound or the TLS files are unusable
   */
  public OpenAiHttpServer(
      String host,
      int port,
      Admission admission,
      ContextPropagators propagators,
      Optional<String> token,
      int maxBodyBytes,
      Optional<Path> tlsCert,
      Optional<Path> tlsKey,
      Optional<Path> tlsClientCa,
      Clock clock)
      throws IOException {
    SslContext ssl = null;
    if (tlsCert.isPresent()) {
      SslContextBuilder b =
          SslContextBuilder.forServer(tlsCert.get().toFile(), tlsKey.orElseThrow().toFile());
      if (tlsClientCa.isPresent()) {
        b.trustManager(tlsClientCa.get().toFile()).clientAuth(ClientAuth.REQUIRE);
      }
      ssl = b.build();
    }
    SslContext sslContext = ssl;
    boolean epoll = Epoll.isAvailable();
    var handler = epoll ? EpollIoHandler.newFactory() : NioIoHandler.newFactory();
    this.boss = new MultiThreadIoEventLoopGroup(1, handler);
    this.workers = new MultiThreadIoEventLoopGroup(2, handler);
    ServerBootstrap b =
        new ServerBootstrap()
            .group(boss, workers)
            .channel(epoll ? EpollServerSocketChannel.class : NioServerSocketChannel.class)
            .childOption(
                ChannelOption.WRITE_BUFFER_WATER_MARK,
                new WriteBufferWaterMark(HIGH_WATER_BYTES / 2, HIGH_WATER_BYTES))
            .childHandler(
                new ChannelInitializer<SocketChannel>() {
                  @Override
                  protected void initChannel(SocketChannel ch) {
                    if (sslContext != null) {
                      ch.pipeline().addLast(sslContext.newHandler(ch.alloc()));
                    }
                    ch.pipeline()
                        .addLast(new HttpServerCodec())
                        .addLast(new HttpServerKeepAliveHandler())
                        .addLast(new HttpObjectAggregator(maxBodyBytes))
                        .addLast(
                            new OpenAiHandler(
                                admission, propagators, token, clock, OUTBOX_CAPACITY));
                  }
                });
    try {
      this.channel = b.bind(new InetSocketAddress(host, port)).sync().channel();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      close();
      throw new IOException("interrupted while binding the HTTP port");
    } catch (RuntimeException e) {
      close();
      throw new IOException("--http-port " + port + ": cannot listen: " + e.getMessage(), e);
    }
  }

  /** The bound port. */
  public int port() {
    return ((InetSocketAddress) channel.localAddress()).getPort();
  }

  /** Stops accepting connections (requests in flight are drained by the engine loop). */
  public void stopAccepting() {
    if (channel != null) {
      channel.close().syncUninterruptibly();
    }
  }

  @Override
  public void close() {
    stopAccepting();
    boss.shutdownGracefully(0, 2, TimeUnit.SECONDS);
    workers.shutdownGracefully(0, 2, TimeUnit.SECONDS);
  }
}
