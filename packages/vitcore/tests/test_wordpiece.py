"""A real WordPiece vocabulary file: loading, BERT's greedy longest-match-first split, caption ids, errors."""

import numpy as np
import pytest
import vitcore

# A tiny BERT-style vocab.txt: id = line number. "un ##aff ##able" is the example of google-research/bert's
# WordpieceTokenizer docstring ("unaffable" -> ["un", "##aff", "##able"]).
TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "this", "is", "a", "photo", "of", "shirt", "##s", ".", "un", "##aff",
          "##able", "runn", "##ing", "##n", "r"]


@pytest.fixture
def vocab_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(TOKENS) + "\n", encoding="utf-8")
    return path


def test_load_vocab_reads_ids_by_line(vocab_file):
    vocab = vitcore.load_vocab(vocab_file)
    assert len(vocab) == len(TOKENS) and vocab.ids["shirt"] == TOKENS.index("shirt")
    assert (vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id) == (0, 1, 2, 3)


def test_wordpiece_is_greedy_longest_match_first(vocab_file):
    vocab = vitcore.load_vocab(vocab_file)
    assert vitcore.wordpiece("unaffable", vocab) == ["un", "##aff", "##able"]  # BERT's docstring example
    assert vitcore.wordpiece("running", vocab) == ["runn", "##ing"]  # longest first: not r + ##n + ...
    assert vitcore.wordpiece("shirts", vocab) == ["shirt", "##s"]
    assert vitcore.wordpiece("unaffablex", vocab) == ["[UNK]"]  # one unmatched tail: the whole word is unknown
    assert vitcore.wordpiece("a" * 101, vocab) == ["[UNK]"]  # over BERT's 100 characters per word


def test_tokenize_with_a_vocab(vocab_file):
    vocab = vitcore.load_vocab(vocab_file)
    ids, mask = vitcore.tokenize(["This is a photo of shirts.", "unaffable zebra", ""], max_length=12, vocab=vocab)
    expected = ["[CLS]", "this", "is", "a", "photo", "of", "shirt", "##s", ".", "[SEP]"]
    np.testing.assert_array_equal(ids[0], [TOKENS.index(t) for t in expected] + [0, 0])
    np.testing.assert_array_equal(ids[1, :6], [TOKENS.index(t) for t in
                                               ["[CLS]", "un", "##aff", "##able", "[UNK]", "[SEP]"]])
    assert list(mask.sum(1)) == [10, 6, 2] and ids.dtype == np.int32 and mask.dtype == np.bool_
    cut, cut_mask = vitcore.tokenize(["This is a photo of shirts."], max_length=5, vocab=vocab)
    np.testing.assert_array_equal(cut[0], [TOKENS.index(t) for t in ["[CLS]", "this", "is", "a", "[SEP]"]])
    assert cut_mask.all()


def test_special_tokens_spelled_otherwise(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("<pad>\n<s>\n</s>\n<unk>\nbag\n", encoding="utf-8")
    vocab = vitcore.load_vocab(path, pad="<pad>", cls="<s>", sep="</s>", unk="<unk>")
    ids, _ = vitcore.tokenize(["bag"], max_length=4, vocab=vocab)
    np.testing.assert_array_equal(ids[0], [1, 4, 2, 0])


def test_bad_vocab_files_name_the_file_and_the_fix(tmp_path, without_jaxtyping):
    path = tmp_path / "vocab.txt"
    path.write_text("[PAD]\n[CLS]\nbag\n", encoding="utf-8")
    missing = r"has no special token\(s\) \['\[SEP\]', '\[UNK\]'\]; .*\(sep=\.\.\., unk=\.\.\.\)"
    with pytest.raises(ValueError, match=missing):
        vitcore.load_vocab(path)
    path.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nbag\nbag\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 6 repeats the token 'bag' of line 5"):
        vitcore.load_vocab(path)
    path.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no tokens"):
        vitcore.load_vocab(path)
    with pytest.raises(TypeError, match="expected None or a vitcore.load_vocab"):
        vitcore.tokenize(["bag"], vocab={"bag": 4})
