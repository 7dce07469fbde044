"""Optimizers of the study: Adam/AdamW with masked, scheduled weight decay and warmup + cosine fitted to the run;
SGD with (Nesterov) momentum for the NFNet recipe (Brock et al. 2021, Smith et al. 2023).

The chain is ``[adaptive gradient clipping (mask)] -> clip (global or per-tensor norm) -> scale_by_adam ->
add_decayed_weights(mask, wd schedule) -> scale_by_learning_rate(warmup + cosine)``, i.e. decoupled weight decay
(AdamW, Loshchilov & Hutter 2019) whose effective per-step shrinkage is ``lr(t) * wd(t)``. Every schedule in the
chain is evaluated from its transform's own ``count``; all counts start at 0 and advance once per applied update,
so they always equal ``TrainState.step``. With ``optimizer="sgd"`` the chain is ``[AGC] -> clip -> add_decayed_weights
(coupled L2, before the momentum, as DeepMind's nfnets ``SGD_AGC``) -> trace(momentum, nesterov) ->
scale_by_learning_rate``.

Example::

    cfg = OptimConfig(optimizer="adamw", lr=1e-3, weight_decay=0.05, warmup_fraction=0.05)
    tx = make_optimizer(cfg, total_steps=1000, wd_mask=vitcore.weight_decay_mask(model))
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int
from runloop import standard_promotion
from runloop.optim import adaptive_grad_clip, per_tensor_clip_by_norm
from vitcore import stacked_axes

from ..blocks.schedules import divide, warmup_cosine
from .run_length import RunLength

_OPTIMIZERS = ("adam", "adamw", "sgd")
# How ``clip_norm`` applies: to the norm of all gradients together, or to each gradient tensor on its own (DINO).
_CLIPS = {"global": optax.clip_by_global_norm, "per_tensor": per_tensor_clip_by_norm}


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """Optimizer and schedule hyperparameters (all plain numbers, JSON-able via ``dataclasses.asdict``).

    ``optimizer``: ``"adamw"`` decays decoupled from the gradient statistics (weights shrink by ``lr * wd`` each
    step); ``"adam"`` adds ``wd * param`` to the gradient before Adam (coupled L2, as ``torch.optim.Adam``);
    ``"sgd"``: SGD with heavy-ball ``momentum`` (``nesterov=True``: Nesterov's; NFNets: 0.9, Nesterov), the weight
    decay coupled as with ``"adam"`` (``b1``, ``b2``, ``eps`` are Adam's and unused by SGD).
    ``lr`` is the peak learning rate reached at the end of the warmup, which starts from ``start_lr``; the cosine
    then decays to ``min_lr`` at ``total_steps``. Give the warmup as ``warmup_steps`` or ``warmup_fraction`` of the
    run (not both). ``weight_decay_end`` (optional) makes the decay follow a cosine from ``weight_decay`` to it over
    the run (DINO: 0.04 -> 0.4). ``clip_norm=None`` disables clipping; ``clip_mode`` says what it bounds:
    ``"global"`` the norm of all gradients together (``optax.clip_by_global_norm``), ``"per_tensor"`` each gradient
    tensor's norm on its own (DINO's ``utils.clip_gradients``, `runloop.optim.per_tensor_clip`). ``agc`` (None: off)
    is the clip ratio lambda of adaptive gradient clipping (Brock et al. 2021, `runloop.optim.agc`: each unit's
    gradient norm is bounded by ``agc * max(||W||, agc_eps)``), the NFNets' recipe (0.01 at batch 4096 with
    NFNet-F; the methods' output layers are left out, ``AbstractMethod.final_layers``); it runs first, usually
    with ``clip_norm=None``.
    """

    optimizer: str = "adamw"  # "adam" | "adamw" | "sgd" (checked in __post_init__ with a clear message)
    lr: float = 1e-3
    start_lr: float = 0.0
    min_lr: float = 0.0
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    weight_decay_end: float | None = None
    clip_norm: float | None = 1.0
    clip_mode: str = "global"  # "global" | "per_tensor"
    warmup_steps: int | None = None
    warmup_fraction: float | None = None
    agc: float | None = None
    agc_eps: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = True

    def __post_init__(self) -> None:
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer={self.optimizer!r}; expected one of {_OPTIMIZERS}")
        for name in ("lr", "start_lr", "min_lr", "eps", "weight_decay"):
            value = getattr(self, name)
            if not value >= 0.0:
                raise ValueError(f"{name}={value!r}; expected a number >= 0")
        for name in ("b1", "b2", "momentum"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name}={value!r}; expected 0 <= {name} < 1")
        if self.weight_decay_end is not None and not self.weight_decay_end >= 0.0:
            raise ValueError(f"weight_decay_end={self.weight_decay_end!r}; expected None or a number >= 0")
        if self.clip_mode not in _CLIPS:
            raise ValueError(f"clip_mode={self.clip_mode!r}; expected one of {tuple(_CLIPS)}")
        if self.clip_norm is not None and not self.clip_norm > 0.0:
            raise ValueError(f"clip_norm={self.clip_norm!r}; expected None (no clipping) or a number > 0")
        if self.agc is not None and not self.agc > 0.0:
            raise ValueError(f"agc={self.agc!r}; expected None (no adaptive clipping) or a clip ratio > 0 (the "
                             "NFNet paper: 0.01 at batch 4096)")
        if not self.agc_eps > 0.0:
            raise ValueError(f"agc_eps={self.agc_eps!r}; expected > 0 (DeepMind: 1e-3)")
        if self.warmup_steps is not None and self.warmup_fraction is not None:
            raise ValueError(
                f"warmup_steps={self.warmup_steps} and warmup_fraction={self.warmup_fraction} are both set; "
                "give the warmup one way only"
            )
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise ValueError(f"warmup_steps={self.warmup_steps!r}; expected an integer >= 0")
        if self.warmup_fraction is not None and not 0.0 <= self.warmup_fraction <= 1.0:
            raise ValueError(f"warmup_fraction={self.warmup_fraction!r}; expected a number in [0, 1]")

    def warmup_for(self, total_steps: int) -> int:
        """Warmup length in steps for a run of ``total_steps``, capped at the run length."""
        if self.warmup_steps is not None:
            warmup = self.warmup_steps
        elif self.warmup_fraction is not None:
            warmup = round(self.warmup_fraction * total_steps)
        else:
            warmup = 0
        return min(warmup, total_steps)


def _check_total_steps(total_steps: int) -> None:
    if not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"total_steps={total_steps!r}; expected an integer >= 1")


def _lengths(cfg: OptimConfig, total_steps: int | RunLength) -> tuple[Any, Any]:
    """(run length, warm-up length): Python ints, or the int32 arrays of a `RunLength` (data of the step)."""
    if isinstance(total_steps, RunLength):
        return total_steps.total_steps, total_steps.warmup_steps
    _check_total_steps(total_steps)
    return total_steps, cfg.warmup_for(total_steps)


def learning_rate_schedule(cfg: OptimConfig, total_steps: int | RunLength) -> optax.Schedule:
    """Linear warmup ``start_lr -> lr`` over the warmup, then cosine ``lr -> min_lr`` ending exactly at
    ``total_steps`` (the study fits the cosine to each run length); a warmup of the whole run ends at ``lr``.
    ``total_steps``: an int, or a `RunLength` (the lengths as data of a compiled step: the same values).
    The values of ``optax.warmup_cosine_decay_schedule`` (`schedules.warmup_cosine`)."""
    total, warmup = _lengths(cfg, total_steps)
    inner = warmup_cosine(cfg.lr, total, warmup_steps=warmup, init_value=cfg.start_lr, end_value=cfg.min_lr)

    def schedule(count: Int[Array, ""] | int) -> Float[Array, ""]:
        return jnp.asarray(inner(count), jnp.float32)

    return schedule


def weight_decay_schedule(cfg: OptimConfig, total_steps: int | RunLength) -> optax.Schedule:
    """Constant ``weight_decay``, or a cosine from ``weight_decay`` to ``weight_decay_end`` over the whole run
    (DINO's ``cosine_scheduler(wd, wd_end, epochs)`` without warmup). ``total_steps``: as in
    `learning_rate_schedule`."""
    total, _ = _lengths(cfg, total_steps)
    if cfg.weight_decay_end is None:
        return optax.constant_schedule(cfg.weight_decay)
    start, end = cfg.weight_decay, cfg.weight_decay_end

    def schedule(count: Int[Array, ""] | int) -> Float[Array, ""]:
        frac = jnp.clip(divide(jnp.asarray(count, jnp.float32), total), 0.0, 1.0)
        return jnp.float32(end) + jnp.float32(0.5 * (start - end)) * (1.0 + jnp.cos(jnp.float32(jnp.pi) * frac))

    return schedule


def make_optimizer(cfg: OptimConfig, total_steps: int | RunLength, wd_mask: Any = None, agc_mask: Any = None
                   ) -> optax.GradientTransformation:
    """The optax chain for ``cfg`` over a run of ``total_steps`` optimizer steps (an int, or a `RunLength`: the
    lengths as data of a compiled step; the chain's structure and state do not depend on the length).

    ``wd_mask``: pytree of Python bools matching the parameters (``eqx.filter(trainable,
    eqx.is_inexact_array)``), True where weight decay applies, or a callable ``params -> mask`` (e.g.
    ``lambda p: train_state.decay_mask(method, p)``); None decays every parameter. ``agc_mask``: the same for
    adaptive gradient clipping (with ``cfg.agc``; True = clipped), e.g. ``lambda p: train_state.agc_mask(method,
    p)``; None clips every parameter.
    """
    lr = learning_rate_schedule(cfg, total_steps)
    wd = weight_decay_schedule(cfg, total_steps)
    use_decay = cfg.weight_decay > 0.0 or (cfg.weight_decay_end or 0.0) > 0.0
    parts: list[optax.GradientTransformation] = []
    if cfg.agc is not None:
        # Layer-stacked blocks (scan_layers=True) are clipped layer by layer, unit by unit, as unstacked ones.
        agc = adaptive_grad_clip(cfg.agc, eps=cfg.agc_eps, stacked_axes=stacked_axes)
        parts.append(agc if agc_mask is None else optax.masked(agc, agc_mask))
    if cfg.clip_norm is not None:
        parts.append(_CLIPS[cfg.clip_mode](cfg.clip_norm))
    if use_decay and cfg.optimizer in ("adam", "sgd"):
        parts.append(optax.add_decayed_weights(wd, mask=wd_mask))
    if cfg.optimizer == "sgd":
        parts.append(optax.trace(decay=cfg.momentum, nesterov=cfg.nesterov))
    else:
        parts.append(optax.scale_by_adam(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps))
    if use_decay and cfg.optimizer == "adamw":
        parts.append(optax.add_decayed_weights(wd, mask=wd_mask))
    parts.append(optax.scale_by_learning_rate(lr))
    return standard_promotion(optax.chain(*parts))

