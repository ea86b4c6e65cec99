package io.kvant.engine.tensor;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The 5-bit and K-quant decoders against an outside implementation: random blocks dequantized by
 * gguf-py, llama.cpp's Python GGUF package ({@code tools/kquant/ggml_reference.py} wrote the
 * resource). Every bit field of every layout is exercised, so a misplaced nibble, bit plane or
 * scale shows up here even though kvant's vector and scalar decoders agree with each other.
 */
class GgmlReferenceBlocksTest {

  record Reference(byte[] blocks, float[] values) {}

  static Map<DType, Reference> load() throws IOException {
    byte[] all;
    try (InputStream in =
        GgmlReferenceBlocksTest.class.getResourceAsStream("ggml-reference-blocks.bin")) {
      assertThat(in).as("test resource ggml-reference-blocks.bin").isNotNull();
      all = in.readAllBytes();
    }
    ByteBuffer b = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
    Map<DType, Reference> out = new LinkedHashMap<>();
    while (b.hasRemaining()) {
      byte[] name = new byte[b.get()];
      b.get(name);
      byte[] blocks = new byte[b.getInt()];
      b.get(blocks);
      float[] values = new float[b.getInt()];
      b.asFloatBuffer().get(values);
      b.position(b.position() + 4 * values.length);
      out.put(
          DType.valueOf(new String(name, StandardCharsets.US_ASCII)),
          new Reference(blocks, values));
    }
    return out;
  }

  @Test
  void decodersMatchGgufPyOnRandomBlocks() throws IOException {
    Map<DType, Reference> refs = load();
    assertThat(refs.keySet())
        .containsExactly(
            DType.Q5_0, DType.Q5_1, DType.Q2_K, DType.Q3_K, DType.Q4_K, DType.Q5_K, DType.Q6_K);
    for (Map.Entry<DType, Reference> e : refs.entrySet()) {
      DType type = e.getKey();
      Reference ref = e.getValue();
      int n = ref.values().length;
      // As one row, and as rows of one block each (row offsets must land on block boundaries).
      Tensor row = Tensors.of(type, 1, n, MemorySegment.ofArray(ref.blocks()));
      int rows = n / type.blockSize();
      Tensor perBlock =
          Tensors.of(type, rows, type.blockSize(), MemorySegment.ofArray(ref.blocks()));
      float[] decoded = new float[n];
      row.dequantizeRow(0, decoded, 0);
      for (int i = 0; i < n; i++) {
        float expected = ref.values()[i];
        String where = type + " element " + i;
        assertThat(decoded[i]).as(where).isEqualTo(expected);
        assertThat(row.get(0, i)).as(where).isEqualTo(expected);
        assertThat(perBlock.get(i / type.blockSize(), i % type.blockSize()))
            .as(where)
            .isEqualTo(expected);
      }
    }
  }

  /** The vector matmul over these blocks agrees with a float64 dot of gguf-py's values. */
  @Test
  void matmulOverReferenceBlocksMatchesDoubleDot() throws IOException {
    Random rnd = new Random(5);
    for (Map.Entry<DType, Reference> e : load().entrySet()) {
      DType type = e.getKey();
      float[] v = e.getValue().values();
      int cols = type.blockSize() * (type.blockSize() == 32 ? 4 : 2);
      int rows = v.length / cols;
      Tensor w = Tensors.of(type, rows, cols, MemorySegment.ofArray(e.getValue().blocks()));
      float[] x = RandomTensors.randomInput(3 * cols, rnd);
      float[] out = new float[3 * rows];
      w.matmul(x, 3, out);
      for (int b = 0; b < 3; b++) {
        for (int r = 0; r < rows; r++) {
          double dot = 0;
          double abs = 0;
          for (int c = 0; c < cols; c++) {
            dot += (double) v[r * cols + c] * x[b * cols + c];
            abs += Math.abs((double) v[r * cols + c] * x[b * cols + c]);
          }
          assertThat((double) out[b * rows + r])
              .as(type + " row " + r + " input " + b)
              .isCloseTo(dot, org.assertj.core.data.Offset.offset((cols + 2) * 0x1p-24 * abs));
        }
      }
    }
  }
}
