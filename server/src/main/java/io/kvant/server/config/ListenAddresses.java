package io.kvant.server.config;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.Optional;

/**
 * The {@code listen} setting: a comma-separated list of {@code unix:///absolute/path.sock} and
 * {@code tcp://HOST:PORT} (or plain {@code tcp}: TCP on {@code host}/{@code port}), at most one of
 * each kind.
 *
 * @param tcp whether TCP is listed
 * @param tcpAddress the TCP address, if listed as {@code tcp://HOST:PORT}
 * @param unix the socket file, if listed
 */
record ListenAddresses(boolean tcp, Optional<InetSocketAddress> tcpAddress, Optional<Path> unix) {
  /** Longest socket path Linux accepts ({@code sun_path} is 108 bytes with the terminator). */
  static final int MAX_SOCKET_PATH_BYTES = 107;

  /**
   * @param where the flag or file key, for messages
   * @throws ConfigException naming {@code where} and the bad entry
   */
  static ListenAddresses parse(String where, String value) throws ConfigException {
    boolean tcp = false;
    Optional<InetSocketAddress> tcpAddress = Optional.empty();
    Optional<Path> unix = Optional.empty();
    for (String raw : value.split(",", -1)) {
      String a = raw.strip();
      if (a.startsWith("unix:")) {
        if (unix.isPresent()) {
          throw new ConfigException(where + ": more than one unix: address");
        }
        unix = Optional.of(unixPath(where, a));
      } else if (a.equals("tcp") || a.startsWith("tcp://")) {
        if (tcp) {
          throw new ConfigException(where + ": more than one tcp address");
        }
        tcp = true;
        if (!a.equals("tcp")) {
          tcpAddress = Optional.of(tcpAddress(where, a));
        }
      } else {
        throw new ConfigException(
            where + ": '" + a + "' is neither unix:///path/to/kvant.sock, tcp://HOST:PORT nor tcp");
      }
    }
    return new ListenAddresses(tcp, tcpAddress, unix);
  }

  private static Path unixPath(String where, String a) throws ConfigException {
    // unix:///abs/path (empty authority) or unix:/abs/path, as gRPC's unix: targets are written
    String path = a.startsWith("unix://") ? a.substring("unix://".length()) : a.substring(5);
    if (!path.startsWith("/")) {
      throw new ConfigException(
          where + ": '" + a + "' needs an absolute path, as in unix:///run/kvant/kvant.sock");
    }
    int bytes = path.getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
    if (bytes > MAX_SOCKET_PATH_BYTES) {
      throw new ConfigException(
          where
              + ": socket path is "
              + bytes
              + " bytes, longer than the "
              + MAX_SOCKET_PATH_BYTES
              + " Linux allows");
    }
    Path p = Path.of(path);
    if (p.getFileName() == null) {
      throw new ConfigException(where + ": '" + a + "' names a directory, not a socket file");
    }
    return p;
  }

  private static InetSocketAddress tcpAddress(String where, String a) throws ConfigException {
    String hostPort = a.substring("tcp://".length());
    int colon = hostPort.lastIndexOf(':');
    if (colon <= 0 || colon == hostPort.length() - 1) {
      throw new ConfigException(where + ": '" + a + "' must be tcp://HOST:PORT");
    }
    String host = hostPort.substring(0, colon);
    if (host.startsWith("[") && host.endsWith("]")) {
      host = host.substring(1, host.length() - 1);
    }
    int port;
    try {
      port = Integer.parseInt(hostPort.substring(colon + 1));
    } catch (NumberFormatException e) {
      throw new ConfigException(where + ": '" + a + "' has a port that is not a number");
    }
    if (port < 0 || port > 65535) {
      throw new ConfigException(where + ": port must be in [0, 65535], got " + port);
    }
    return InetSocketAddress.createUnresolved(host, port);
  }
}
