"""The held-out upstream evaluation: the training step's loss on a fixed set of examples never trained on.

The loss of the last training batch is one noisy batch of training data; Smith et al. 2023 plot *held-out* loss
against compute. So every pre-training run scores the same examples at its end (and at each evaluation):

- the set: the first ``batches x batch_size`` examples of the dataset's ``test`` split in file order (no shuffle;
  pre-training reads ``train`` only), in batches of the run's global batch size, so contrastive losses see as
  many negatives as in training; fixed per dataset, image size and batch size;
- the randomness: the step's keys come from a state whose key is ``key(HELDOUT_KEY)`` and whose step counter is
  0, the same for every run, method and evaluation: the same augmentations, masks and dropout everywhere, so
  runs differ only through their parameters (and method state: EMA teachers, DINO's centre). Schedules inside
  the loss are evaluated at step 0 (of the built-in methods only DINO's teacher temperature has one);
- the metrics: the engine runs the *compiled training step* on a copy of the state (`runloop.HeldOut`: nothing
  more to compile) and keeps ``loss`` and the method's own metrics, averaged over the batches, as
  ``heldout_loss``, ``heldout_accuracy`` (supervised: top-1 of the training view), ... in the evaluation records
  of ``metrics.jsonl`` and in ``summary.json``'s ``final_metrics``.

Four batches cost four training steps at the end of a run::

    held = heldout_set("data/fmnist_objects/1.0.0", image_size=32, batch_size=64)
    train_method(method, optim, data, cfg, heldout=held)      # summary.final_metrics["heldout_loss"]
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import runloop
from runloop import TrainState

from .step import STEP_METRICS

__all__ = ["HELDOUT_BATCHES", "HELDOUT_KEY", "HELDOUT_SPLIT", "HeldOutSet", "engine_heldout", "heldout_set",
           "heldout_state"]

HELDOUT_BATCHES = 4
HELDOUT_KEY = 0  # jax.random.key(HELDOUT_KEY): the one key of every held-out evaluation
HELDOUT_SPLIT = "test"


@dataclasses.dataclass(frozen=True)
class HeldOutSet:
    """Host batches (dicts of numpy arrays, as the pre-training pipeline serves them: this process's share of
    each global batch) of ``split``."""

    batches: tuple[dict[str, np.ndarray], ...]
    split: str

    def __post_init__(self) -> None:
        if not self.batches:
            raise ValueError("a held-out set needs at least one batch")


def heldout_set(directory: str | Path, *, image_size: int, batch_size: int, batches: int = HELDOUT_BATCHES,
                split: str = HELDOUT_SPLIT) -> HeldOutSet | None:
    """The first ``batches`` full global batches of ``split`` in file order (fewer when the split is smaller),
    each cut to this process's share; None when the dataset has no such split or it holds less than one batch
    (the run then records no held-out metrics)."""
    # Here, not at the top: the dataset readers (grain, flopdata) load only for a run that reads a dataset.
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
                                          shuffle=False, num_epochs=1, shard_index=0, shard_count=1,
                                          decoded=False))  # streamed: only these batches are decoded
    share, index = batch_size // jax.process_count(), jax.process_index()
    out = []
    for batch in loader:
        out.append({k: np.asarray(v)[index * share:(index + 1) * share] for k, v in batch.items()})
        if len(out) == min(batches, available):
            break
    return HeldOutSet(tuple(out), split)


def heldout_state(state: TrainState) -> TrainState:
    """``state`` with the held-out key and step 0 (the engine copies it before the step consumes it)."""
    return TrainState(state.model, state.opt_state, state.extra, jnp.zeros_like(state.step),
                      jax.random.key(HELDOUT_KEY))


def engine_heldout(held: HeldOutSet) -> runloop.HeldOut:
    """The engine's `runloop.HeldOut` of ``held``: keeps ``loss`` and the method's metrics, not the update's."""
    return runloop.HeldOut(held.batches, heldout_state, keep=lambda name: name not in STEP_METRICS)
