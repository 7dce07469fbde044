"""A real WordPiece vocabulary, for users who have one (BERT's ``vocab.txt``); the default tokenizer needs none.

``load_vocab(path)`` reads one token per line (id = line number, continuation pieces start with "##", as in
google-research/bert ``tokenization.load_vocab``); ``vitcore.tokenize(texts, vocab=vocab)`` then splits each word
greedily into the longest pieces of the vocabulary (BERT's ``WordpieceTokenizer``: a word with no split becomes
the unknown token). The text encoder's embedding table must match: ``TextConfig(..., vocab_size=len(vocab))``.

Example (BERT's own)::

    vocab = vitcore.load_vocab("vocab.txt")     # holds "un", "##aff", "##able", ...
    vitcore.wordpiece("unaffable", vocab)       # ["un", "##aff", "##able"]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

__all__ = ["WordPieceVocab", "load_vocab", "wordpiece"]

MAX_CHARS_PER_WORD = 100  # BERT's max_input_chars_per_word: longer words are unknown


@dataclasses.dataclass(frozen=True, eq=False)
class WordPieceVocab:
    """Token -> id of a WordPiece vocabulary, and the ids of its special tokens (build with `load_vocab`)."""

    ids: Mapping[str, int]
    pad_id: int
    cls_id: int
    sep_id: int
    unk_id: int
    unk: str = "[UNK]"
    source: str = ""

    def __len__(self) -> int:
        return len(self.ids)


def load_vocab(path: str | Path, *, pad: str = "[PAD]", cls: str = "[CLS]", sep: str = "[SEP]",
               unk: str = "[UNK]") -> WordPieceVocab:
    """Reads a ``vocab.txt`` (UTF-8, one token per line, id = line number). ``pad``/``cls``/``sep``/``unk``: how
    the file spells the special tokens (BERT's by default). Raises ValueError naming the file for a missing
    special token, a repeated token or an empty file."""
    path = Path(path)
    tokens = path.read_text(encoding="utf-8").splitlines()
    if not tokens:
        raise ValueError(f"{path} holds no tokens; expected a WordPiece vocab.txt with one token per line")
    ids: dict[str, int] = {}
    for number, token in enumerate(tokens):
        if token in ids:
            raise ValueError(f"{path} line {number + 1} repeats the token {token!r} of line {ids[token] + 1}; "
                             "each token must appear once (its id is its line number)")
        ids[token] = number
    special = {"pad": pad, "cls": cls, "sep": sep, "unk": unk}
    missing = {name: token for name, token in special.items() if token not in ids}
    if missing:
        options = ", ".join(f"{name}=..." for name in missing)
        raise ValueError(f"{path} has no special token(s) {sorted(missing.values())}; add them to the file or pass "
                         f"how the file spells them ({options})")
    return WordPieceVocab(MappingProxyType(ids), pad_id=ids[pad], cls_id=ids[cls], sep_id=ids[sep], unk_id=ids[unk],
                          unk=unk, source=str(path))


def wordpiece(word: str, vocab: WordPieceVocab) -> list[str]:
    """The greedy longest-match-first pieces of one word (BERT's ``WordpieceTokenizer.tokenize`` on one word);
    ``[vocab.unk]`` when the word cannot be split into pieces of the vocabulary or is over 100 characters."""
    if len(word) > MAX_CHARS_PER_WORD:
        return [vocab.unk]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab.ids:
                break
            end -= 1
        else:
            return [vocab.unk]
        pieces.append(piece)
        start = end
    return pieces
