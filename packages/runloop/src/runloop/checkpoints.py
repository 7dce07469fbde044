"""orbax checkpoints of any state pytree, with the data iterator's state and free metadata.

A checkpoint holds the state's arrays as a flat list (PRNG keys stored as their raw ``uint32`` data) and one JSON
item: the step, the data iterator's state (grain's ``get_state()``; bytes stored base64), the caller's metadata and
the shape/dtype of every array (so a checkpoint of another model is a clear error, not an orbax structure dump).
orbax writes into a temporary directory and renames it when complete, so a killed run leaves the previous
checkpoint intact (and a ``*-tmp`` leftover, which is ignored and cleaned up).

- ``save`` refuses a non-finite state (a NaN never replaces a good checkpoint).
- Retention: the newest ``keep`` checkpoints, plus the newest *good* one when it is older (metadata
  ``"good": false`` marks a checkpoint whose loss had left its sane band, see `runloop.loop`), so a diverged run
  always leaves a checkpoint to resume from.
- ``restore()`` reads the newest checkpoint; when it is unreadable (truncated, corrupt) it warns, sets it aside
  under ``<dir>/unreadable/`` and falls back to the previous kept one. ``restore(step=S)`` reads exactly step S;
  a run continuing from an older step drops the newer ones first (``discard_after(S)``: they belong to the
  abandoned continuation, and their steps will be written again).

Example::

    ckpt = Checkpointer(run_dir / "checkpoints", keep=3)
    ckpt.save(100, state, data_state=it.get_state(), metadata={"loss": 0.4, "good": True})
    restored = ckpt.restore(abstract_state, shardings=shardings)    # None when there is no checkpoint
"""

from __future__ import annotations

import base64
import dataclasses
import shutil
import warnings
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from .jsonable import to_jsonable
from .nonfinite import NonFiniteError
from .sharding import is_array_like

__all__ = ["Checkpointer", "Restored", "all_finite", "kept_steps"]


@dataclasses.dataclass(frozen=True)
class Restored:
    """What `Checkpointer.restore` returns. (A dataclass, not a NamedTuple: the API docs resolve its fields.)"""

    state: Any
    step: int
    data_state: Any
    metadata: dict[str, Any]


def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array | jax.ShapeDtypeStruct) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _leaves(state: Any) -> list[Any]:
    return jax.tree.leaves(eqx.filter(state, is_array_like))


def _storable(x: jax.Array) -> jax.Array:
    return jax.random.key_data(x) if _is_key(x) else x


def _spec(x: Any) -> list[Any]:
    stored = jax.eval_shape(jax.random.key_data, x) if _is_key(x) else x
    return [list(stored.shape), str(stored.dtype)]


def _encode_data_state(data_state: Any) -> Any:
    if isinstance(data_state, bytes):
        return {"__bytes_b64__": base64.b64encode(data_state).decode("ascii")}
    return data_state


def _decode_data_state(data_state: Any) -> Any:
    if isinstance(data_state, dict) and set(data_state) == {"__bytes_b64__"}:
        return base64.b64decode(data_state["__bytes_b64__"])
    return data_state


@jax.jit
def _finite_flags(floats: list[jax.Array]) -> jax.Array:
    return jnp.stack([jnp.all(jnp.isfinite(x)) for x in floats])


def all_finite(state: Any) -> bool:
    """True when every floating-point array of ``state`` is finite (one compiled reduction, one host read)."""
    floats = [x for x in _leaves(state) if not _is_key(x) and jnp.issubdtype(x.dtype, jnp.inexact)]
    return not floats or bool(jax.device_get(_finite_flags(floats)).all())


def kept_steps(directory: str | Path) -> list[int]:
    """The steps of the checkpoints in ``directory`` (folders named by their step), oldest first, read from the
    folder names alone: no checkpoint manager is opened and nothing is created."""
    path = Path(directory)
    if not path.is_dir():
        return []
    return sorted(int(p.name) for p in path.iterdir() if p.is_dir() and p.name.isdigit())


class Checkpointer:
    """Saves and restores checkpoints in ``directory`` (see the module docstring); keeps the newest ``keep``."""

    def __init__(self, directory: str | Path, *, keep: int = 3) -> None:
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep={keep!r}; expected to keep >= 1 checkpoint")
        self.directory = Path(directory).absolute()
        self.keep = keep
        options = ocp.CheckpointManagerOptions(max_to_keep=None, enable_async_checkpointing=False, create=True,
                                               cleanup_tmp_directories=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)
        self._meta: dict[int, dict[str, Any]] = {}

    # ---------------------------------------------------------------------------------------------- queries
    def steps(self) -> list[int]:
        """The kept checkpoints' steps, oldest first."""
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def path_of(self, step: int | None) -> str:
        return "none" if step is None else str(self.directory / str(step))

    def metadata(self, step: int) -> dict[str, Any]:
        """The caller's metadata saved with ``step`` ({} when that checkpoint's JSON item is unreadable)."""
        if step not in self._meta:
            try:
                extra = self._manager.restore(step, args=ocp.args.Composite(extra=ocp.args.JsonRestore()))["extra"]
                self._meta[step] = dict(extra["metadata"])
            except (ValueError, OSError, KeyError, TypeError):
                return {}
        return self._meta[step]

    def last_good(self) -> int | None:
        """The newest kept step whose metadata does not say ``"good": false`` (None when there is none)."""
        return next((s for s in reversed(self.steps()) if self.metadata(s).get("good", True)), None)

    # ------------------------------------------------------------------------------------------------ save
    def save(self, step: int, state: Any, *, data_state: Any = None, metadata: dict[str, Any] | None = None) -> bool:
        """Writes ``state`` as checkpoint ``step``; returns False (writing nothing) when that step is already
        kept. Raises NonFiniteError, writing nothing, when the state holds a NaN or inf."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"step={step!r}; expected an integer >= 0")
        if step in self.steps():
            return False
        if not all_finite(state):
            raise NonFiniteError(f"refusing to save a non-finite state at step {step}; last good checkpoint: "
                                 f"{self.path_of(self.last_good())}")
        leaves = _leaves(state)
        arrays = {f"{i:05d}": _storable(x) for i, x in enumerate(leaves)}
        item = to_jsonable({"step": step, "data_state": _encode_data_state(data_state),
                            "metadata": dict(metadata or {}), "arrays": [_spec(x) for x in leaves]}, "checkpoint item")
        self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(arrays),
                                                          extra=ocp.args.JsonSave(item)), force=True)
        self._manager.wait_until_finished()
        self._meta[step] = item["metadata"]
        self._retain()
        return True

    def _retain(self) -> None:
        steps = self.steps()
        keep = set(steps[-self.keep:])
        good = self.last_good()
        if good is not None:
            keep.add(good)
        for step in steps:
            if step not in keep:
                self._manager.delete(step)
                self._meta.pop(step, None)

    # --------------------------------------------------------------------------------------------- restore
    def restore(self, template: Any, *, shardings: Any = None, step: int | None = None) -> Restored | None:
        """The newest readable checkpoint (or exactly ``step``) read into ``template``'s structure, or None when
        there is no checkpoint. ``template``: a concrete or abstract (``jax.ShapeDtypeStruct``) state;
        ``shardings``: a pytree like ``eqx.filter(template, is_array_like)`` placing the restored arrays (default:
        the template arrays' own shardings)."""
        steps = self.steps()
        if step is not None:
            if step not in steps:
                raise ValueError(f"step={step}: no such checkpoint in {self.directory}; kept steps: {steps}")
            try:
                return self._read(template, shardings, step)
            except _Unreadable as error:
                raise ValueError(f"{self.path_of(step)} is not a valid checkpoint ({error})") from None
        for candidate in reversed(steps):
            try:
                return self._read(template, shardings, candidate)
            except _Unreadable as error:
                older = [s for s in steps if s < candidate]
                warnings.warn(f"checkpoint {self.path_of(candidate)} is unreadable ({error}); set aside under "
                              f"{self.directory / 'unreadable'}, falling back to "
                              f"{self.path_of(older[-1]) if older else 'a fresh start'}", RuntimeWarning,
                              stacklevel=2)
                self._set_aside(candidate)
        return None

    def discard_after(self, step: int) -> list[int]:
        """Deletes the kept checkpoints newer than ``step``; returns their steps."""
        newer = [s for s in self.steps() if s > step]
        for s in newer:
            self._manager.delete(s)
            self._meta.pop(s, None)
        return newer

    def _set_aside(self, step: int) -> None:
        target = self.directory / "unreadable" / str(step)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        (self.directory / str(step)).rename(target)
        self._manager.reload()
        self._meta.pop(step, None)

    def _read(self, template: Any, shardings: Any, step: int) -> Restored:
        leaves = _leaves(template)
        shardings = [getattr(x, "sharding", None) for x in leaves] if shardings is None else \
            jax.tree.leaves(shardings)
        try:
            extra = self._manager.restore(step, args=ocp.args.Composite(extra=ocp.args.JsonRestore()))["extra"]
        except Exception as error:  # noqa: BLE001  (json, tensorstore, orbax: any failure to read the file)
            raise _Unreadable(_short(error)) from None
        expected = [_spec(x) for x in leaves]
        if extra.get("arrays") != expected:
            raise ValueError(_structure_mismatch(self.path_of(step), extra.get("arrays"), expected))
        targets = {}
        for i, (x, sharding) in enumerate(zip(leaves, shardings, strict=True)):
            shape, dtype = _spec(x)
            targets[f"{i:05d}"] = jax.ShapeDtypeStruct(tuple(shape), dtype, sharding=sharding)
        try:
            arrays = self._manager.restore(step, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(targets)))["state"]
        except Exception as error:  # noqa: BLE001  (truncated or corrupt array files)
            raise _Unreadable(_short(error)) from None
        values = []
        for i, x in enumerate(leaves):
            value = arrays[f"{i:05d}"]
            if _is_key(x):
                value = jax.random.wrap_key_data(value, impl=jax.random.key_impl(x) if isinstance(x, jax.Array)
                                                 else None)
            values.append(value)
        dynamic, static = eqx.partition(template, is_array_like)
        state = eqx.combine(jax.tree.unflatten(jax.tree.structure(dynamic), values), static)
        self._meta[step] = dict(extra["metadata"])
        return Restored(state, step, _decode_data_state(extra["data_state"]), dict(extra["metadata"]))

    def close(self) -> None:
        self._manager.close()

    def __enter__(self) -> Checkpointer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Unreadable(Exception):
    """A checkpoint's files could not be read (truncated, corrupt, missing)."""


def _short(error: BaseException) -> str:
    text = str(error).split(" [tensorstore_spec")[0]
    return f"{type(error).__name__}: {text[:300]}"


def _structure_mismatch(path: str, found: Any, expected: list[Any]) -> str:
    if not isinstance(found, list):
        return f"{path} records no array list; it was not written by runloop.Checkpointer"
    if len(found) != len(expected):
        return (f"{path} holds a state of {len(found)} arrays; this run's state has {len(expected)} (a checkpoint "
                "of a different model or method?)")
    i = next(i for i, (a, b) in enumerate(zip(found, expected, strict=True)) if a != b)
    return (f"{path} holds a different state: array {i} is {found[i][1]}{found[i][0]} in the checkpoint and "
            f"{expected[i][1]}{expected[i][0]} in this run (a checkpoint of a different model or method?)")
