package io.kvant.engine.format.safetensors;

import java.util.Optional;

/**
 * Element types of safetensors tensors, named as in the header's {@code dtype} field, with their
 * size in bytes. Sub-byte types (F4, F6_*) are not supported.
 */
public enum SafetensorsDtype {
  BOOL(1),
  U8(1),
  I8(1),
  F8_E5M2(1),
  F8_E4M3(1),
  F8_E8M0(1),
  I16(2),
  U16(2),
  F16(2),
  BF16(2),
  I32(4),
  U32(4),
  F32(4),
  I64(8),
  U64(8),
  F64(8),
  C64(8);

  private final int byteSize;

  SafetensorsDtype(int byteSize) {
    this.byteSize = byteSize;
  }

  /** Bytes per element. */
  public int byteSize() {
    return byteSize;
  }

  /** The dtype spelled {@code name} in a header (case-sensitive, as the format defines). */
  public static Optional<SafetensorsDtype> fromName(String name) {
    for (SafetensorsDtype d : values()) {
      if (d.name().equals(name)) {
        return Optional.of(d);
      }
    }
    return Optional.empty();
  }
}
