package io.kvant.engine.tensor.packed;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class CodeSlabsTest {
  @Test
  void slicesAreAlignedZeroedAndDisjoint() {
    CodeSlabs slabs = new CodeSlabs(false);
    List<MemorySegment> got = new ArrayList<>();
    for (long bytes : new long[] {1, 63, 64, 65, 1000, 4096, 12345}) {
      MemorySegment s = slabs.allocate(bytes);
      assertThat(s.byteSize()).isEqualTo(bytes);
      assertThat(s.address() % CodeSlabs.ALIGN).as("alignment of %d bytes", bytes).isZero();
      for (long i = 0; i < bytes; i++) {
        assertThat(s.get(ValueLayout.JAVA_BYTE, i)).isZero();
      }
      s.fill((byte) got.size());
      got.add(s);
    }
    // each slice still holds its own fill: none overlaps another
    for (int i = 0; i < got.size(); i++) {
      MemorySegment s = got.get(i);
      assertThat(s.get(ValueLayout.JAVA_BYTE, 0)).isEqualTo((byte) i);
      assertThat(s.get(ValueLayout.JAVA_BYTE, s.byteSize() - 1)).isEqualTo((byte) i);
    }
    assertThat(slabs.slabs()).isEqualTo(1);
    assertThat(slabs.advised()).as("no advice off Linux").isZero();
  }

  @Test
  void slabsGrowToTheCapAndLargeRequestsGetWholeHugePages() {
    CodeSlabs slabs = new CodeSlabs(false);
    MemorySegment first = slabs.allocate(CodeSlabs.HUGE);
    MemorySegment second = slabs.allocate(1);
    assertThat(slabs.slabs()).as("the 2 MiB slab is full").isEqualTo(2);
    assertThat(
            second.address() >= first.address()
                && second.address() < first.address() + CodeSlabs.HUGE)
        .as("the second slice lies outside the first slab")
        .isFalse();
    // the second slab is 4 MiB: room for 4 MiB less the first byte's line
    slabs.allocate(2 * CodeSlabs.HUGE - 2 * CodeSlabs.ALIGN);
    assertThat(slabs.slabs()).isEqualTo(2);
    long large = CodeSlabs.MAX_SLAB + 1;
    MemorySegment own = slabs.allocate(large);
    assertThat(own.byteSize()).isEqualTo(large);
    assertThat(own.address() % CodeSlabs.HUGE).as("a slab starts on a huge page").isZero();
    assertThat(slabs.slabs()).isEqualTo(3);
    // the shared slab is still the current one
    slabs.allocate(CodeSlabs.ALIGN);
    assertThat(slabs.slabs()).isEqualTo(3);
  }

  @Test
  void refusesEmptyAndNegativeRequests() {
    CodeSlabs slabs = new CodeSlabs(false);
    assertThatThrownBy(() -> slabs.allocate(0)).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> slabs.allocate(-5)).isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void onLinuxSlabsAreZeroedHugePageAlignedMappings() {
    CodeSlabs slabs = new CodeSlabs(true);
    MemorySegment a = slabs.allocate(3 * CodeSlabs.HUGE);
    MemorySegment b = slabs.allocate(1000);
    for (MemorySegment s : new MemorySegment[] {a, b}) {
      for (long i = 0; i < s.byteSize(); i += 4093) {
        assertThat(s.get(ValueLayout.JAVA_BYTE, i)).isZero();
      }
      s.fill((byte) 7);
      assertThat(s.get(ValueLayout.JAVA_BYTE, s.byteSize() - 1)).isEqualTo((byte) 7);
    }
    assertThat(a.address() % CodeSlabs.HUGE).as("a slab starts on a huge page").isZero();
    assertThat(slabs.slabs()).as("6 MiB and 1,000 bytes share an 8 MiB slab").isEqualTo(1);
    // mapped and advised where this is Linux with mmap and madvise; never more than allocated
    assertThat(slabs.advised()).isBetween(0, slabs.slabs());
    if (System.getProperty("os.name", "").startsWith("Linux")) {
      assertThat(slabs.advised()).as("Linux maps and advises every slab").isEqualTo(1);
    }
  }
}
