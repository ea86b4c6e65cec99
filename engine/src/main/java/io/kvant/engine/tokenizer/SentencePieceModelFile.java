package io.kvant.engine.tokenizer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads a SentencePiece {@code tokenizer.model} (a serialized {@code sentencepiece.ModelProto})
 * whose model type is BPE, without a protobuf library.
 *
 * <p>Fields used (numbers from {@code sentencepiece_model.proto}); everything else is skipped:
 *
 * <pre>
 * ModelProto     { repeated SentencePiece pieces = 1; TrainerSpec trainer_spec = 2;
 *                  NormalizerSpec normalizer_spec = 3; }
 * SentencePiece  { string piece = 1; float score = 2; Type type = 3 [default NORMAL]; }
 * TrainerSpec    { ModelType model_type = 3 [default UNIGRAM]; bool treat_whitespace_as_suffix = 24;
 *                  int32 unk_id = 40 [default 0]; int32 bos_id = 41 [default 1];
 *                  int32 eos_id = 42 [default 2]; }
 * NormalizerSpec { string name = 1; bytes precompiled_charsmap = 2;
 *                  bool add_dummy_prefix = 3 [default true];
 *                  bool remove_extra_whitespaces = 4 [default true];
 *                  bool escape_whitespaces = 5 [default true]; }
 * </pre>
 *
 * <p>A non-empty {@code precompiled_charsmap} (a normalizer other than {@code identity}) is
 * approximated by NFKC, see {@link SentencePieceNormalizer}.
 */
public final class SentencePieceModelFile {
  private static final int MODEL_TYPE_BPE = 2;

  private SentencePieceModelFile() {}

  /**
   * Reads {@code path}.
   *
   * @throws TokenizerFormatException if the file is malformed or truncated, is not a BPE model, or
   *     uses options this reader does not support; the message names the file
   * @throws IOException if it cannot be read
   */
  public static SentencePieceBpeTokenizer read(Path path) throws IOException {
    return parse(TokenizerFiles.readAll(path), path.toString());
  }

  static SentencePieceBpeTokenizer parse(byte[] data, String source)
      throws TokenizerFormatException {
    List<String> pieces = new ArrayList<>();
    List<Float> scores = new ArrayList<>();
    List<TokenType> types = new ArrayList<>();
    Trainer trainer = new Trainer();
    SentencePieceNormalizer normalizer = new SentencePieceNormalizer(true, true, false);

    ProtoReader model = new ProtoReader(data, 0, data.length, source);
    while (model.hasMore()) {
      int key = model.readKey();
      switch (ProtoReader.field(key)) {
        case 1 -> {
          model.expectWireType(key, ProtoReader.LENGTH_DELIMITED);
          readPiece(model.readMessage(), pieces.size(), pieces, scores, types);
        }
        case 2 -> {
          model.expectWireType(key, ProtoReader.LENGTH_DELIMITED);
          trainer = readTrainer(model.readMessage());
        }
        case 3 -> {
          model.expectWireType(key, ProtoReader.LENGTH_DELIMITED);
          normalizer = readNormalizer(model.readMessage(), source);
        }
        default -> model.skip(ProtoReader.wireType(key));
      }
    }
    if (trainer.modelType != MODEL_TYPE_BPE) {
      throw new TokenizerFormatException(
          source, "model type " + trainer.modelType + " is not BPE (2); only BPE is supported");
    }
    if (trainer.whitespaceAsSuffix) {
      throw new TokenizerFormatException(source, "treat_whitespace_as_suffix is not supported");
    }
    float[] scoreArray = new float[scores.size()];
    for (int i = 0; i < scoreArray.length; i++) {
      scoreArray[i] = scores.get(i);
    }
    return SentencePieceBpeTokenizer.create(
        source,
        pieces.toArray(String[]::new),
        scoreArray,
        types.toArray(TokenType[]::new),
        trainer.bosId,
        trainer.eosId,
        trainer.unkId,
        normalizer);
  }

  private static void readPiece(
      ProtoReader in, int index, List<String> pieces, List<Float> scores, List<TokenType> types)
      throws TokenizerFormatException {
    String piece = null;
    float score = 0f;
    TokenType type = TokenType.NORMAL;
    while (in.hasMore()) {
      int key = in.readKey();
      switch (ProtoReader.field(key)) {
        case 1 -> {
          in.expectWireType(key, ProtoReader.LENGTH_DELIMITED);
          piece = in.readString("piece " + index);
        }
        case 2 -> {
          in.expectWireType(key, ProtoReader.FIXED32);
          score = in.readFloat();
        }
        case 3 -> {
          in.expectWireType(key, ProtoReader.VARINT);
          long code = in.readVarint();
          try {
            type = TokenType.fromCode((int) Math.min(code, Integer.MAX_VALUE));
          } catch (IllegalArgumentException e) {
            throw in.error(in.position(), "piece " + index + ": " + e.getMessage());
          }
        }
        default -> in.skip(ProtoReader.wireType(key));
      }
    }
    if (piece == null) {
      throw in.error(in.position(), "piece " + index + " has no text");
    }
    pieces.add(piece);
    scores.add(score);
    types.add(type);
  }

  /** The trainer_spec fields that matter for encoding, with the proto's defaults. */
  private static final class Trainer {
    int modelType = 1;
    boolean whitespaceAsSuffix;
    int unkId = 0;
    int bosId = 1;
    int eosId = 2;
  }

  private static Trainer readTrainer(ProtoReader in) throws TokenizerFormatException {
    Trainer t = new Trainer();
    while (in.hasMore()) {
      int key = in.readKey();
      int field = ProtoReader.field(key);
      if (field == 3 || field == 24 || (field >= 40 && field <= 42)) {
        in.expectWireType(key, ProtoReader.VARINT);
        int value = in.readInt32();
        switch (field) {
          case 3 -> t.modelType = value;
          case 24 -> t.whitespaceAsSuffix = value != 0;
          case 40 -> t.unkId = value;
          case 41 -> t.bosId = value;
          default -> t.eosId = value;
        }
      } else {
        in.skip(ProtoReader.wireType(key));
      }
    }
    return t;
  }

  private static SentencePieceNormalizer readNormalizer(ProtoReader in, String source)
      throws TokenizerFormatException {
    boolean hasCharsmap = false;
    boolean addDummyPrefix = true;
    boolean removeExtraWhitespaces = true;
    boolean escapeWhitespaces = true;
    while (in.hasMore()) {
      int key = in.readKey();
      int field = ProtoReader.field(key);
      switch (field) {
        case 2 -> {
          in.expectWireType(key, ProtoReader.LENGTH_DELIMITED);
          hasCharsmap = in.skipBytes() > 0;
        }
        case 3, 4, 5 -> {
          in.expectWireType(key, ProtoReader.VARINT);
          boolean value = in.readVarint() != 0;
          if (field == 3) {
            addDummyPrefix = value;
          } else if (field == 4) {
            removeExtraWhitespaces = value;
          } else {
            escapeWhitespaces = value;
          }
        }
        default -> in.skip(ProtoReader.wireType(key));
      }
    }
    if (!escapeWhitespaces) {
      throw new TokenizerFormatException(source, "escape_whitespaces=false is not supported");
    }
    return new SentencePieceNormalizer(addDummyPrefix, removeExtraWhitespaces, hasCharsmap);
  }
}
