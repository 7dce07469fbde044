"""The cost of one full training step of a method (forward, backward, optimizer update, EMA/teacher work),
measured on the compiled step and in closed form.

The step is lowered, never run, on ``jax.ShapeDtypeStruct`` inputs (the method's ``batch_spec`` and the abstract
train state), so paper-scale steps are measured on a laptop. ``count="compiled"`` (the default) compiles it and
reads the compiled program's count (``flopmeter.cost_from_compiled``); ``count="lowered"`` counts the lowered
program without compiling (``flopmeter.cost_from_lowered``: seconds instead of tens of seconds on a CPU, within
0.1% of the compiled count on every Figure 3 step, docs/benchmarks.md). The closed form is the method's own
``analytic_macs``. Works for any method, a user's included::

    row = profile("mypkg.simsiam:SimSiam", "vit-b16", 4096)     # what tools/profile_flops.py prints
    row["flops_per_step"], row["analytic_flops_per_step"]

With ``cache_dir``, a result is stored under the SHA-256 of the lowered program's HLO text (with the count kind,
the JAX version and the backend): the same program is never counted twice, whatever names the row.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import equinox as eqx
import flopmeter
import jax
from runloop import count_step, is_array_like, write_json_atomic
from runloop.train_state import COUNTS

from ..methods.method import AbstractMethod
from ..pretrain.optim import OptimConfig
from ..pretrain.recipes import build_method
from ..pretrain.step import make_method_step
from ..pretrain.train_state import abstract_pretrain_state, method_optimizer

__all__ = ["COUNTS", "profile", "step_cost"]


def _count(lowered: jax.stages.Lowered, count: str, lower_seconds: float, cache_dir: Path | None) -> dict[str, Any]:
    """``flops``, ``macs``, ``compile_seconds`` (lowering + compiling or counting) and ``notes`` of the
    lowered step, from ``cache_dir`` when this very program (its HLO text) was counted before."""
    start = time.perf_counter()
    text, path = None, None
    if cache_dir is not None:
        text = lowered.as_text(dialect="hlo")  # the count="lowered" path needs it anyway
        key = hashlib.sha256("\n".join([count, jax.__version__, jax.default_backend(), text]).encode())
        path = Path(cache_dir) / f"{key.hexdigest()}.json"
        if path.exists():
            return json.loads(path.read_text())
    cost = count_step(lowered, count=count, hlo_text=text)
    result = {"flops": cost.flops, "macs": cost.macs, "notes": list(cost.notes),
              "compile_seconds": lower_seconds + time.perf_counter() - start}
    if path is not None:
        write_json_atomic(path, result)
    return result


def step_cost(method: AbstractMethod, optim: OptimConfig, batch_size: int, *, count: str = "compiled",
              cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Measured and closed-form cost of one step of ``method`` trained with ``optim`` at ``batch_size``:
    ``flops_per_step`` and ``macs_per_step`` (whole program, ``count`` "compiled" or "lowered" as in the module
    docstring; FLOPs = 2 per multiply-add), ``analytic_flops_per_step`` and ``analytic_macs_per_step``
    (``method.analytic_macs``), ``params`` (trainable parameters), ``count``, ``compile_seconds`` (lowering and
    compiling or counting; as first measured when read from ``cache_dir``) and flopmeter's ``notes``."""
    if count not in COUNTS:
        raise ValueError(f"count={count!r}; expected one of {COUNTS}")
    tx = method_optimizer(method, optim, method.total_steps)
    state, batch = abstract_pretrain_state(method, tx, method.batch_spec(batch_size))
    start = time.perf_counter()
    lowered = flopmeter.lower_abstract(make_method_step(method, tx), state, batch)
    cost = _count(lowered, count, time.perf_counter() - start, None if cache_dir is None else Path(cache_dir))
    params = sum(x.size for x in jax.tree.leaves(eqx.filter(state.model, is_array_like)))
    analytic = float(method.analytic_macs(batch_size))
    return {"flops_per_step": cost["flops"], "macs_per_step": cost["macs"],
            "analytic_flops_per_step": flopmeter.macs_to_flops(analytic), "analytic_macs_per_step": analytic,
            "params": int(params), "count": count, "compile_seconds": cost["compile_seconds"],
            "notes": list(cost["notes"])}


def profile(
    method: str | type[AbstractMethod],
    model: str,
    batch_size: int,
    *,
    image_size: int | None = None,
    method_overrides: Mapping[str, Any] | None = None,
    preset: str = "paper:i1k",
    total_steps: int = 250_000,
    count: str = "compiled",
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """``step_cost`` of ``method`` (a registered name, ``"package.module:ClassName"`` or a class) on backbone
    preset ``model``, built by ``recipes.build_method`` with ``preset``'s hyperparameters and
    ``method_overrides`` (only the method's own fields; anything else is a ValueError naming the valid ones),
    plus the row's description: ``method``, ``model``, ``batch``, ``image_size``, ``overrides`` and each override
    again at the top level (``mask_ratio``, ``text_encoder``, ...: the variant, as readers of the table expect).
    ``count`` and ``cache_dir`` as in `step_cost`."""
    overrides = dict(method_overrides or {})
    built, optim = build_method(method, model, preset=preset, total_steps=total_steps, image_size=image_size,
                                method_overrides=overrides)
    name = method if isinstance(method, str) else f"{method.__module__}:{method.__qualname__}"
    row = {"method": name, "model": model, "batch": batch_size, "image_size": built.image_size,
           "overrides": overrides}
    cost = step_cost(built, optim, batch_size, count=count, cache_dir=cache_dir)
    clash = sorted(set(overrides) & (set(row) | set(cost)))
    if clash:
        raise ValueError(f"method_overrides {clash} clash with the row's own keys {sorted(set(row) | set(cost))}")
    return row | overrides | cost
