"""Fine-tuning checkpoints: model + optimizer state + step + data iterator state, one directory per step.

``directory/step_00000100/state.eqx`` holds ``eqx.tree_serialise_leaves((model, opt_state))`` and ``meta.json``
the step, the data iterator's state (grain's ``get_state()``, bytes stored as base64) and free metadata. A
checkpoint is written into a hidden temporary directory and renamed into place when complete (``os.rename`` of a
directory is atomic on POSIX), so a killed run never leaves a half checkpoint that `restore_checkpoint` would read.
Only the last ``keep`` are kept. No orbax: the state is small and replicated, and segtransfer stays dependency-light.

Example::

    save_checkpoint(ckpt_dir, step, model, opt_state, data_state=it.get_state())
    restored = restore_checkpoint(ckpt_dir, model, opt_state)    # None when there is none
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PyTree

__all__ = ["save_checkpoint", "restore_checkpoint", "latest_checkpoint_step", "Restored"]

_PATTERN = re.compile(r"^step_(\d{8})$")


class Restored(NamedTuple):
    """What `restore_checkpoint` returns."""

    model: Any
    opt_state: PyTree
    step: int
    data_state: Any
    metadata: dict[str, Any]


def _encode(data_state: Any) -> Any:
    if isinstance(data_state, bytes):
        return {"__bytes_b64__": base64.b64encode(data_state).decode("ascii")}
    return data_state


def _decode(data_state: Any) -> Any:
    if isinstance(data_state, dict) and set(data_state) == {"__bytes_b64__"}:
        return base64.b64decode(data_state["__bytes_b64__"])
    return data_state


def _steps(directory: Path) -> list[int]:
    if not directory.is_dir():
        return []
    return sorted(int(m.group(1)) for p in directory.iterdir() if (m := _PATTERN.match(p.name)) and p.is_dir())


def latest_checkpoint_step(directory: str | Path) -> int | None:
    """The newest complete checkpoint's step in ``directory``, or None."""
    steps = _steps(Path(directory))
    return steps[-1] if steps else None


def _all_finite(tree: PyTree) -> bool:
    return all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array)))


def save_checkpoint(
    directory: str | Path,
    step: int,
    model: Any,
    opt_state: PyTree,
    *,
    data_state: Any = None,
    metadata: dict[str, Any] | None = None,
    keep: int = 2,
) -> Path:
    """Writes the checkpoint of ``step`` (the number of steps done) atomically; keeps the newest ``keep``.

    Raises FloatingPointError, writing nothing, if the state holds a NaN or inf (a good checkpoint is never
    replaced by a broken one).
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step={step!r}: expected an int >= 0")
    if keep < 1:
        raise ValueError(f"keep={keep!r}: expected >= 1")
    if not _all_finite((model, opt_state)):
        raise FloatingPointError(f"refusing to checkpoint a non-finite state at step {step}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"step_{step:08d}"
    if final.exists():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=directory))
    try:
        eqx.tree_serialise_leaves(tmp / "state.eqx", (model, opt_state))
        meta = {"step": step, "data_state": _encode(data_state), "metadata": metadata or {}}
        (tmp / "meta.json").write_text(json.dumps(meta, sort_keys=True))
        for name in ("state.eqx", "meta.json"):
            with open(tmp / name, "rb") as f:
                os.fsync(f.fileno())
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in _steps(directory)[:-keep]:
        shutil.rmtree(directory / f"step_{old:08d}", ignore_errors=True)
    return final


def restore_checkpoint(directory: str | Path, model_like: Any, opt_state_like: PyTree,
                       step: int | None = None) -> Restored | None:
    """The newest (or the given ``step``'s) checkpoint read into the structure of ``(model_like,
    opt_state_like)`` (concrete or `eqx.filter_eval_shape` trees), or None when ``directory`` holds none."""
    directory = Path(directory)
    step = latest_checkpoint_step(directory) if step is None else step
    if step is None:
        return None
    path = directory / f"step_{step:08d}"
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist; checkpoints in {directory}: {_steps(directory)}")
    model, opt_state = eqx.tree_deserialise_leaves(path / "state.eqx", (model_like, opt_state_like))
    meta = json.loads((path / "meta.json").read_text())
    if meta["step"] != step:
        raise ValueError(f"{path}/meta.json holds step {meta['step']}; expected {step}")
    return Restored(model, opt_state, step, _decode(meta["data_state"]), dict(meta["metadata"]))
