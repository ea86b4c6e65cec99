package io.kvant.engine.kv;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/**
 * The content hash of one full KV block: 128 bits of SHA-256 over the parent block's hash, the
 * block's token ids and the extra keys (the model version id first). Two blocks have the same hash
 * only if they hold the same tokens after the same prefix under the same weights, so a block
 * computed by one model version is never served to a request pinned to another.
 *
 * <p>SHA-256 rather than a fast non-cryptographic hash: prompts come from clients, and a chosen
 * collision would let one tenant read KV computed from another's prompt (vLLM made the same move).
 */
public record BlockHash(long hi, long lo) {
  private static final BlockHash ROOT = new BlockHash(0L, 0L);

  /**
   * Hashes block {@code [from, from + blockSize)} of {@code tokens} after {@code parent} ({@code
   * null} for the first block).
   */
  static BlockHash of(BlockHash parent, int[] tokens, int from, int blockSize, String extraKey) {
    MessageDigest sha = sha256();
    BlockHash p = parent == null ? ROOT : parent;
    ByteBuffer buf = ByteBuffer.allocate(16 + 4 * blockSize + 4).order(ByteOrder.LITTLE_ENDIAN);
    buf.putLong(p.hi).putLong(p.lo);
    for (int i = 0; i < blockSize; i++) {
      buf.putInt(tokens[from + i]);
    }
    byte[] extra = extraKey.getBytes(StandardCharsets.UTF_8);
    buf.putInt(extra.length);
    sha.update(buf.array(), 0, buf.position());
    sha.update(extra);
    ByteBuffer d = ByteBuffer.wrap(sha.digest());
    return new BlockHash(d.getLong(), d.getLong());
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is required by the Java platform", e);
    }
  }

  /** A well-mixed 64-bit value for sketches and tables. */
  long mix() {
    return hi ^ Long.rotateLeft(lo, 29);
  }
}
