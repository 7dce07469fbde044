"""The results table's upstream columns, read from a pre-training run's ``summary.json``.

- ``upstream_loss``: the held-out loss (``final_metrics.heldout_loss``, `sslmethods.pretrain.heldout`: the
  training step's loss on the first examples of the dataset's test split, fixed key), ``upstream_loss_source``
  ``"heldout"``; older runs recorded none, so theirs is the last training batch's loss (``final_metrics.loss``), source
  ``"last batch"``.
- ``upstream_accuracy`` (%): the held-out accuracy where the method has one (``final_metrics.heldout_accuracy``,
  supervised: top-1), source ``"heldout"``; otherwise the kNN monitor's last accuracy on the test split, source
  ``"knn"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["LOSS_HELDOUT", "LOSS_LAST_BATCH", "upstream_columns"]

LOSS_HELDOUT = "heldout"
LOSS_LAST_BATCH = "last batch"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def upstream_columns(summary: Mapping[str, Any]) -> dict[str, Any]:
    """``upstream_loss``, ``upstream_accuracy`` and their sources (None where the summary has no value)."""
    final = summary.get("final_metrics")
    final = final if isinstance(final, Mapping) else {}
    out: dict[str, Any] = {"upstream_loss": None, "upstream_loss_source": None, "upstream_accuracy": None,
                           "upstream_accuracy_source": None}
    if (loss := _number(final.get("heldout_loss"))) is not None:
        out |= {"upstream_loss": loss, "upstream_loss_source": LOSS_HELDOUT}
    elif (loss := _number(final.get("loss"))) is not None:
        out |= {"upstream_loss": loss, "upstream_loss_source": LOSS_LAST_BATCH}
    knn = summary.get("knn")
    last = knn[-1] if isinstance(knn, list) and knn and isinstance(knn[-1], Mapping) else {}
    if (accuracy := _number(final.get("heldout_accuracy"))) is not None:
        out |= {"upstream_accuracy": 100.0 * accuracy, "upstream_accuracy_source": "heldout"}
    elif (accuracy := _number(last.get("knn_top1"))) is not None:
        out |= {"upstream_accuracy": 100.0 * accuracy, "upstream_accuracy_source": "knn"}
    return out
