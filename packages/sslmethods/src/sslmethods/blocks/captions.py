"""CLIP pseudo-captions for labelled data (class names from a dataset: `flopdata.label_names`).

The study (Koppula et al. 2022, section 2.1) trains CLIP on labelled sets with captions of the form
"This is a photo of <label> and <label2> ... <label_n>.", at most 8 labels and 55 characters. Here the labels
are listed in their order, duplicates and padding (negative ids) dropped, joined as an English list
("a, b and c"), and labels are dropped from the end until the caption fits; a single label that does not fit
is cut at the character limit (the tokenizer would cut it there too)::

    pseudo_caption([8, 7], ("t-shirt", ..., "bag", "ankle boot"))   # 'This is a photo of bag and sneaker.'
    names = flopdata.label_names("data/fmnist_scenes/1.0.0")          # the dataset's ClassLabel names
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["MAX_CAPTION_CHARS", "MAX_LABELS", "batch_captions", "pseudo_caption"]

MAX_CAPTION_CHARS = 55
"""The study's caption length limit (characters fed to the language encoder)."""
MAX_LABELS = 8
"""At most 8 labels per image (study, A.3)."""

_PREFIX = "This is a photo of "


def _listed(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def pseudo_caption(
    labels: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    *,
    max_labels: int = MAX_LABELS,
    max_chars: int = MAX_CAPTION_CHARS,
) -> str:
    """"This is a photo of <l1>, <l2> and <l3>." from class ids (negative ids are padding and skipped).

    Keeps the first ``max_labels`` distinct ids in order, then drops ids from the end until the caption has
    at most ``max_chars`` characters (order labels by importance). Raises ValueError when no valid label is
    left or an id has no name.
    """
    if max_labels < 1 or max_chars < 1:
        raise ValueError(f"max_labels={max_labels}, max_chars={max_chars}; expected positive limits")
    ids: list[int] = []
    for raw in np.asarray(labels).reshape(-1).tolist():
        label = int(raw)
        if label < 0 or label in ids:
            continue
        if label >= len(class_names):
            raise ValueError(f"label {label} has no name: class_names has {len(class_names)} entries")
        ids.append(label)
    ids = ids[:max_labels]
    if not ids:
        raise ValueError(f"labels={np.asarray(labels).tolist()} holds no valid (non-negative) class id")
    words = [str(class_names[i]).strip() for i in ids]
    for count in range(len(words), 0, -1):
        text = f"{_PREFIX}{_listed(words[:count])}."
        if len(text) <= max_chars:
            return text
    return text[:max_chars]


def batch_captions(
    batch: dict[str, np.ndarray],
    class_names: Sequence[str] | None,
    *,
    max_labels: int = MAX_LABELS,
    max_chars: int = MAX_CAPTION_CHARS,
) -> list[str]:
    """One caption per example of a host batch: the dataset's ``caption`` when it is non-empty, else the
    pseudo-caption of ``labels`` ([b, m], -1 padded) or ``label`` ([b]). Every caption is cut at
    ``max_chars`` characters. Raises ValueError when an example has neither a caption nor named labels."""
    size = len(batch["image"]) if "image" in batch else None
    given = batch.get("caption")
    if "labels" in batch:
        labels = np.asarray(batch["labels"])
    elif "label" in batch:
        labels = np.asarray(batch["label"])[:, None]
    else:
        labels = None
    size = size if size is not None else len(given if given is not None else labels)
    out: list[str] = []
    for i in range(size):
        text = str(given[i]).strip() if given is not None else ""
        if not text:
            if labels is None or class_names is None:
                raise ValueError(
                    f"example {i} of the batch has no caption and "
                    + ("no 'label'/'labels' entry" if labels is None else "class_names=None")
                    + "; give CLIP class_names (e.g. flopdata.label_names(directory)) or captions"
                )
            text = pseudo_caption(labels[i], class_names, max_labels=max_labels, max_chars=max_chars)
        out.append(text[:max_chars])
    return out
