"""A download-free caption tokenizer: hashed word pieces.

Text is lower-cased and cut to `MAX_CAPTION_CHARS` (55, as in the study), split into words and single
punctuation marks, and words longer than 8 characters into 8-character pieces (continuations marked "##", as
word-piece does). Each piece maps to 4 + blake2b(piece) mod (VOCAB_SIZE - 4): stable across runs and
machines, no
vocabulary file. Ids 0-3 are special: PAD, CLS (always first; the text encoder pools it), SEP (end), UNK.
VOCAB_SIZE = 35,000 makes `text-mini` ~12M and `text-medium` ~44M parameters, the study's sizes.

Kept (not a downloaded tokenizer) so that CLIP pre-training runs offline with nothing to fetch. A user who has a real
WordPiece vocabulary passes it: ``tokenize(texts, vocab=vitcore.load_vocab("vocab.txt"))`` (`vitcore.wordpiece`);
the words are the same, the pieces and ids come from the file.
"""

import hashlib
import re

import numpy as np

from .wordpiece import WordPieceVocab, wordpiece

VOCAB_SIZE = 35_000
PAD_ID, CLS_ID, SEP_ID, UNK_ID = 0, 1, 2, 3
MAX_CAPTION_CHARS = 55
# 55 characters give at most 55 pieces (one per character in the worst case), plus CLS and SEP.
DEFAULT_MAX_LENGTH = MAX_CAPTION_CHARS + 2
_PIECE = 8
_SPLIT = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def _piece_id(piece: str) -> int:
    digest = hashlib.blake2b(piece.encode("utf-8"), digest_size=8).digest()
    return 4 + int.from_bytes(digest, "little") % (VOCAB_SIZE - 4)


def _words(text: str) -> list[str]:
    """Lower-cased words and single punctuation marks of the first `MAX_CAPTION_CHARS` characters."""
    return _SPLIT.findall(text.lower()[:MAX_CAPTION_CHARS])


def _pieces(text: str) -> list[str]:
    out = []
    for word in _words(text):
        chunks = [word[i : i + _PIECE] for i in range(0, len(word), _PIECE)]
        out.extend([chunks[0], *("##" + c for c in chunks[1:])])
    return out


def tokenize(texts: list[str], max_length: int = DEFAULT_MAX_LENGTH, *,
             vocab: WordPieceVocab | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Captions -> (ids int32 [b, max_length], padding_mask bool [b, max_length], True = real token).

    Each row is CLS, the pieces of the first 55 characters, SEP, then PAD; rows longer than `max_length` are
    cut (keeping CLS and ending in SEP). ``vocab`` (from `load_vocab`): WordPiece pieces and special ids of that
    vocabulary instead of the hashed ones.
    """
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"texts must be a list of str, got {type(texts).__name__}")
    if max_length < 2:
        raise ValueError(f"max_length={max_length}; expected >= 2 (room for CLS and SEP)")
    if vocab is not None and not isinstance(vocab, WordPieceVocab):
        raise TypeError(f"vocab={type(vocab).__name__}; expected None or a vitcore.load_vocab(...) result")
    pad, cls, sep = (PAD_ID, CLS_ID, SEP_ID) if vocab is None else (vocab.pad_id, vocab.cls_id, vocab.sep_id)
    ids = np.full((len(texts), max_length), pad, np.int32)
    mask = np.zeros((len(texts), max_length), np.bool_)
    for row, text in enumerate(texts):
        if vocab is None:
            pieces = [_piece_id(p) for p in _pieces(text)]
        else:
            pieces = [vocab.ids[p] for word in _words(text) for p in wordpiece(word, vocab)]
        seq = [cls, *pieces[: max_length - 2], sep]
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = True
    return ids, mask
