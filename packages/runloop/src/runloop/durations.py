"""Training durations given as steps, epochs or examples, converted to optimizer steps.

The study counts in steps at a fixed batch (250K steps x 4096 = 800 epochs of ImageNet-1K); users think in epochs
or examples. One helper converts and rejects contradictions::

    steps = to_steps(epochs=800, dataset_size=1_281_167, batch_size=4096)   # 250228 (rounded up)
"""

from __future__ import annotations

import math


def _positive_int(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name}={value!r}; expected a positive integer")


def to_steps(
    *,
    steps: int | None = None,
    epochs: float | int | None = None,
    examples: int | None = None,
    batch_size: int,
    dataset_size: int | None = None,
) -> int:
    """Number of optimizer steps for a duration given in exactly one unit, or several that agree.

    Epochs and examples round up to whole steps (the last partial batch is a full step). ``epochs`` needs
    ``dataset_size``. Several units given must name the same number of steps, otherwise ValueError.
    """
    _positive_int("batch_size", batch_size)
    _positive_int("dataset_size", dataset_size)
    _positive_int("steps", steps)
    _positive_int("examples", examples)
    if epochs is not None and not epochs > 0:
        raise ValueError(f"epochs={epochs!r}; expected a number > 0")
    candidates: dict[str, int] = {}
    if steps is not None:
        candidates["steps"] = steps
    if examples is not None:
        candidates["examples"] = math.ceil(examples / batch_size)
    if epochs is not None:
        if dataset_size is None:
            raise ValueError(f"epochs={epochs} needs dataset_size (the number of training examples)")
        candidates["epochs"] = math.ceil(epochs * dataset_size / batch_size)
    if not candidates:
        raise ValueError("no duration given; pass one of steps=, epochs= (with dataset_size=) or examples=")
    if len(set(candidates.values())) > 1:
        detail = ", ".join(f"{unit} -> {n} steps" for unit, n in candidates.items())
        raise ValueError(
            f"contradictory durations at batch_size={batch_size}, dataset_size={dataset_size}: {detail}; "
            "give one unit only"
        )
    return next(iter(candidates.values()))


def steps_to_epochs(steps: int, *, batch_size: int, dataset_size: int) -> float:
    """Epochs seen in ``steps`` steps of ``batch_size`` over a dataset of ``dataset_size`` examples."""
    _positive_int("steps", steps)
    _positive_int("batch_size", batch_size)
    _positive_int("dataset_size", dataset_size)
    return steps * batch_size / dataset_size


def steps_to_examples(steps: int, *, batch_size: int) -> int:
    """Examples seen in ``steps`` steps of ``batch_size``."""
    _positive_int("steps", steps)
    _positive_int("batch_size", batch_size)
    return steps * batch_size
