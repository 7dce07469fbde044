"""The cost of one full training step of a method (forward, backward, optimizer update, EMA/teacher work),
measured on the compiled step and in closed form.

The step is compiled, never run, on ``jax.ShapeDtypeStruct`` inputs (``flopmeter.measure`` over the method's
``batch_spec`` and the abstract train state), so paper-scale steps are measured on a laptop. The closed form is
the method's own ``analytic_macs``. Works for any method, a user's included::

    row = profile("mypkg.simsiam:SimSiam", "vit-b16", 4096)     # what tools/profile_flops.py prints
    row["flops_per_step"], row["analytic_flops_per_step"]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import equinox as eqx
import flopmeter
import jax
from runloop import is_array_like

from .method import AbstractMethod
from .optim import OptimConfig
from .recipes import build_method
from .step import make_step_fn
from .train_state import abstract_train_state, method_optimizer

__all__ = ["profile", "step_cost"]


def step_cost(method: AbstractMethod, optim: OptimConfig, batch_size: int) -> dict[str, Any]:
    """Measured and closed-form cost of one step of ``method`` trained with ``optim`` at ``batch_size``:
    ``flops_per_step`` and ``macs_per_step`` (whole compiled program; FLOPs = 2 per multiply-add),
    ``analytic_flops_per_step`` and ``analytic_macs_per_step`` (``method.analytic_macs``), ``params`` (trainable
    parameters), ``compile_seconds`` and flopmeter's ``notes``."""
    tx = method_optimizer(method, optim, method.total_steps)
    state, batch = abstract_train_state(method, tx, method.batch_spec(batch_size))
    cost = flopmeter.measure(make_step_fn(method, tx), state, batch)
    params = sum(x.size for x in jax.tree.leaves(eqx.filter(state.trainable, is_array_like)))
    analytic = float(method.analytic_macs(batch_size))
    return {"flops_per_step": cost.flops, "macs_per_step": cost.macs,
            "analytic_flops_per_step": flopmeter.macs_to_flops(analytic), "analytic_macs_per_step": analytic,
            "params": int(params), "compile_seconds": cost.compile_seconds, "notes": list(cost.notes)}


def profile(
    method: str | type[AbstractMethod],
    model: str,
    batch_size: int,
    *,
    image_size: int | None = None,
    method_overrides: Mapping[str, Any] | None = None,
    preset: str = "paper:i1k",
    total_steps: int = 250_000,
) -> dict[str, Any]:
    """``step_cost`` of ``method`` (a registered name, ``"package.module:ClassName"`` or a class) on backbone
    preset ``model``, built by ``recipes.build_method`` with ``preset``'s hyperparameters and
    ``method_overrides`` (only the method's own fields; anything else is a ValueError naming the valid ones),
    plus the row's description: ``method``, ``model``, ``batch``, ``image_size``, ``overrides`` and each override
    again at the top level (``mask_ratio``, ``text_encoder``, ...: the variant, as readers of the table expect)."""
    overrides = dict(method_overrides or {})
    built, optim = build_method(method, model, preset=preset, total_steps=total_steps, image_size=image_size,
                                method_overrides=overrides)
    name = method if isinstance(method, str) else f"{method.__module__}:{method.__qualname__}"
    row = {"method": name, "model": model, "batch": batch_size, "image_size": built.image_size,
           "overrides": overrides}
    cost = step_cost(built, optim, batch_size)
    clash = sorted(set(overrides) & (set(row) | set(cost)))
    if clash:
        raise ValueError(f"method_overrides {clash} clash with the row's own keys {sorted(set(row) | set(cost))}")
    return row | overrides | cost
