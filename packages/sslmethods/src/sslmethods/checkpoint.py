"""Checkpoints with orbax: the whole ``TrainState`` plus the data iterator's state, atomic, last ``keep`` kept.

A checkpoint is the flat list of the state's arrays (PRNG keys stored as their raw ``uint32`` data) and a JSON item
holding the data iterator state (grain's ``get_state()``: a dict, or bytes stored base64) and free metadata. orbax
writes into a temporary directory and renames it when complete, so a run killed mid-write leaves the previous
checkpoint intact. ``save`` refuses non-finite states, so a NaN never replaces a good checkpoint.

Example::

    ckpt = Checkpointer(run_dir / "checkpoints", every=100, keep=3)
    restored = ckpt.restore(template_state)          # None when the directory holds no checkpoint
    ...
    ckpt.maybe_save(state, data_state=it.get_state())
"""

from __future__ import annotations

import base64
import signal
import threading
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from .train_state import TrainState, is_array_like


class NonFiniteError(RuntimeError):
    """A step produced a non-finite loss or gradient (or a non-finite state was about to be saved)."""


def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array | jax.ShapeDtypeStruct) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _leaves(state: TrainState) -> list[Any]:
    return jax.tree.leaves(eqx.filter(state, is_array_like))


def _to_storable(x: jax.Array) -> jax.Array:
    return jax.random.key_data(x) if _is_key(x) else x


def _encode_data_state(data_state: Any) -> Any:
    if isinstance(data_state, bytes):
        return {"__bytes_b64__": base64.b64encode(data_state).decode("ascii")}
    return data_state


def _decode_data_state(data_state: Any) -> Any:
    if isinstance(data_state, dict) and set(data_state) == {"__bytes_b64__"}:
        return base64.b64decode(data_state["__bytes_b64__"])
    return data_state


def all_finite(state: TrainState) -> bool:
    """True when every floating-point array of ``state`` is finite."""
    floats = [x for x in _leaves(state) if not _is_key(x) and jnp.issubdtype(x.dtype, jnp.inexact)]
    if not floats:
        return True
    return bool(jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in floats])))


class Checkpointer:
    """Saves every ``every`` steps (and on demand), keeps the last ``keep``; restores exactly."""

    def __init__(self, directory: str | Path, *, every: int, keep: int = 3) -> None:
        if every < 1:
            raise ValueError(f"every={every!r}; expected a checkpoint interval >= 1 step")
        if keep < 1:
            raise ValueError(f"keep={keep!r}; expected to keep >= 1 checkpoint")
        self.directory = Path(directory).absolute()
        self.every = every
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def path_of(self, step: int | None) -> str:
        return "none" if step is None else str(self.directory / str(step))

    def save(self, state: TrainState, *, data_state: Any = None, metadata: dict[str, Any] | None = None) -> int:
        """Writes ``state`` at its step (a no-op when that step is already saved); returns the step.

        Raises NonFiniteError, writing nothing, when the state holds a NaN or inf.
        """
        step = int(state.step)
        if not all_finite(state):
            raise NonFiniteError(
                f"refusing to save a non-finite state at step {step}; last good checkpoint: "
                f"{self.path_of(self.latest_step())}"
            )
        if step in self._manager.all_steps():
            return step
        arrays = {f"{i:05d}": _to_storable(x) for i, x in enumerate(_leaves(state))}
        json_item = {"data_state": _encode_data_state(data_state), "metadata": metadata or {}, "step": step}
        self._manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(arrays), extra=ocp.args.JsonSave(json_item)),
            force=True,
        )
        self._manager.wait_until_finished()
        return step

    def maybe_save(self, state: TrainState, *, data_state: Any = None, metadata: dict[str, Any] | None = None
                   ) -> bool:
        """Saves when the state's step is a multiple of ``every``; returns whether it saved."""
        if int(state.step) % self.every:
            return False
        self.save(state, data_state=data_state, metadata=metadata)
        return True

    def restore(self, template: TrainState, step: int | None = None) -> tuple[TrainState, Any, dict] | None:
        """``(state, data_state, metadata)`` from the latest (or given) checkpoint, or None when there is none.

        ``template``: a state of the same structure (concrete or from ``abstract_train_state``); its arrays'
        shardings, when present, place the restored arrays.
        """
        step = self.latest_step() if step is None else step
        if step is None:
            return None
        leaves = _leaves(template)
        targets = {}
        for i, x in enumerate(leaves):
            if _is_key(x):
                targets[f"{i:05d}"] = jax.eval_shape(jax.random.key_data, x)
            else:
                targets[f"{i:05d}"] = jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None))
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(targets), extra=ocp.args.JsonRestore()),
        )
        arrays = restored["state"]
        new_leaves = []
        for i, x in enumerate(leaves):
            value = arrays[f"{i:05d}"]
            if _is_key(x):
                impl = jax.random.key_impl(x) if isinstance(x, jax.Array) else None
                value = jax.random.wrap_key_data(jnp.asarray(value), impl=impl)
            new_leaves.append(value)
        dynamic, static = eqx.partition(template, is_array_like)
        treedef = jax.tree.structure(dynamic)
        state = eqx.combine(jax.tree.unflatten(treedef, new_leaves), static)
        extra = restored["extra"]
        if int(state.step) != step:
            raise ValueError(f"checkpoint {self.path_of(step)} holds step {int(state.step)}; expected {step}")
        return state, _decode_data_state(extra["data_state"]), dict(extra["metadata"])

    def close(self) -> None:
        self._manager.close()


class StopSignal:
    """Records SIGTERM (and SIGINT) instead of dying, so the loop can checkpoint and exit cleanly.

    Use as a context manager around the loop; ``requested`` turns True once a signal arrived.
    """

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self.signals = signals
        self.requested = False
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        del frame
        self.requested, self.received = True, signum

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

