package io.kvant.engine.kv;

/**
 * Which cached block the prefix cache gives up first when it needs a free block.
 *
 * <p>Both policies reuse blocks that hold no cached prefix before any cached one; they differ in
 * the order of cached blocks whose reference count dropped to zero.
 */
public enum EvictionPolicyKind {
  /** Least recently released first (vLLM's policy). */
  LRU,
  /**
   * TinyLFU admission in front of LRU: a released block whose estimated access frequency is not
   * above that of the next victim goes to the eviction end instead of the protected end, so one-off
   * prompts cannot flush popular shared prefixes.
   */
  TINY_LFU
}
