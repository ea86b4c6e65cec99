package io.kvant.server.grpc;

import com.google.protobuf.ByteString;

/**
 * Checks of string fields the API declares with {@code utf8_validation = NONE}: the transport
 * passes their bytes through unchecked, so each service checks them itself and answers
 * INVALID_ARGUMENT naming the field (the parser's own check would end the call with UNKNOWN).
 */
public final class Utf8Fields {
  private Utf8Fields() {}

  /**
   * @throws InvalidFieldException "{@code field}: not valid UTF-8" when the bytes are not UTF-8
   */
  public static void require(ByteString bytes, String field) {
    if (!bytes.isValidUtf8()) {
      throw new InvalidFieldException(field, "not valid UTF-8");
    }
  }
}
