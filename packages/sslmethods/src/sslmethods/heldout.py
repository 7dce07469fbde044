"""The held-out upstream evaluation: a method's ``heldout_metrics`` on a fixed set of examples it never trains on.

The training loss of the last batch is one noisy batch of training data; Smith et al. 2023 plot *held-out* loss
against compute. So every pre-training run scores the same examples at its end (and at each evaluation):

- the set: the first ``batches x batch_size`` examples of the dataset's ``test`` split in file order (no shuffle;
  pre-training reads ``train`` only), at the run's global batch size, so contrastive losses see as many
  negatives as in training; fixed per dataset, image size and batch size;
- the randomness: one fixed key (`HELDOUT_KEY`) folded with the batch index, the same for every run, method and
  evaluation, so differences between runs come from their parameters only;
- the metrics: the mean over the batches of ``method.heldout_metrics`` (``"loss"``, and ``"accuracy"`` where the
  method has one), recorded as ``heldout_loss`` / ``heldout_accuracy`` in the run's ``summary.json``
  (``final_metrics``) and in ``metrics.jsonl``'s evaluation records.

Four batches of the training batch size cost four forward passes, under a second for small models::

    held = heldout_set("data/fmnist_objects/1.0.0", image_size=32, batch_size=64)
    heldout_metrics(method, trainable, method_state, held, step=1000)    # {"loss": 2.31, ...}
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .method import AbstractMethod

__all__ = ["HELDOUT_BATCHES", "HELDOUT_KEY", "HELDOUT_SPLIT", "HeldOutSet", "heldout_metrics", "heldout_set"]

HELDOUT_BATCHES = 4
HELDOUT_KEY = 0  # jax.random.key(HELDOUT_KEY): the one key of every held-out evaluation
HELDOUT_SPLIT = "test"


@dataclasses.dataclass(frozen=True)
class HeldOutSet:
    """Host batches (dicts of numpy arrays, as the pre-training pipeline serves them) of ``split``, each of the
    run's global batch size; ``examples`` = their total."""

    batches: tuple[dict[str, np.ndarray], ...]
    split: str

    def __post_init__(self) -> None:
        if not self.batches:
            raise ValueError("a held-out set needs at least one batch")

    @property
    def examples(self) -> int:
        return sum(len(next(iter(b.values()))) for b in self.batches)


def heldout_set(directory: str | Path, *, image_size: int, batch_size: int, batches: int = HELDOUT_BATCHES,
                split: str = HELDOUT_SPLIT) -> HeldOutSet | None:
    """The first ``batches`` full batches of ``split`` in file order (fewer when the split is smaller); None when
    the dataset has no such split or it holds less than one batch (the run then records no held-out metrics).
    Every process reads the same examples."""
    from flopdata import RecordSource, open_builder

    from .data import PretrainData, pretrain_loader

    if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
        raise ValueError(f"batches={batches!r}: expected a positive int")
    if split not in open_builder(str(directory)).info.splits:
        return None
    available = len(RecordSource(str(directory), split)) // batch_size
    if available < 1:
        return None
    loader = pretrain_loader(PretrainData(str(directory), batch_size=batch_size, split=split, image_size=image_size,
                                          shuffle=False, num_epochs=1, shard_index=0, shard_count=1))
    out = []
    for batch in loader:
        out.append({k: np.asarray(v) for k, v in batch.items()})
        if len(out) == min(batches, available):
            break
    return HeldOutSet(tuple(out), split)


@eqx.filter_jit
def _batch_metrics(method: AbstractMethod, trainable: eqx.Module, state: Any, batch: dict[str, jax.Array],
                   step: jax.Array, key: jax.Array) -> dict[str, jax.Array]:
    metrics = method.heldout_metrics(trainable, state, batch, step=step, key=key)
    return {name: jnp.asarray(value, jnp.float32) for name, value in metrics.items()}


def heldout_metrics(method: AbstractMethod, trainable: eqx.Module, state: Any, heldout: HeldOutSet, *,
                    step: int) -> dict[str, float]:
    """The mean over ``heldout``'s batches of ``method.heldout_metrics`` at ``step`` (schedules evaluated there),
    batch ``i`` with key ``fold_in(key(HELDOUT_KEY), i)``; names prefixed ``heldout_`` (``heldout_loss``, ...)."""
    root = jax.random.key(HELDOUT_KEY)
    totals: dict[str, float] = {}
    for i, batch in enumerate(heldout.batches):
        prepared = {k: jnp.asarray(v) for k, v in method.prepare_batch(batch).items()}
        values = jax.device_get(_batch_metrics(method, trainable, state, prepared, jnp.asarray(step, jnp.int32),
                                               jax.random.fold_in(root, i)))
        for name, value in values.items():
            totals[name] = totals.get(name, 0.0) + float(value)
    return {f"heldout_{name}": value / len(heldout.batches) for name, value in totals.items()}
