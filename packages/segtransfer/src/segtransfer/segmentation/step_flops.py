"""FLOPs of one fine-tuning step, measured by `runloop.measure_step` on the real step, abstractly.

A run gets its FLOPs from the executable the engine compiled and ran (``runloop``: ``flops_per_step`` in each
run's ``run.json``); this measures the same step function without a run, for planning, or for runs that did not
measure. The step is the one `segtransfer.segmentation.run` executes: forward + backward through encoder and FCN head,
global norm clip, Adam, weight decay and the learning-rate schedule, returning the new model and optimizer state (so XLA
keeps the backward pass and the update; docs/design.md section 6). Arguments are `jax.ShapeDtypeStruct`s: nothing is
allocated or run. The count is for the global batch as one program on one device; data parallelism adds
communication and the replicated optimizer work of each device.

Example::

    cost = train_step_cost(model, optimizer, batch_size=16, image_size=512)
    cost.flops * num_steps      # fine-tuning FLOPs of the run
"""

from __future__ import annotations

import equinox as eqx
import flopmeter
import jax
import jax.numpy as jnp
import jax.random as jr
import optax
import runloop

from .finetune import init_finetune_state, make_finetune_step
from .segmenter import Segmenter

__all__ = ["train_step_cost"]


def train_step_cost(model: Segmenter, optimizer: optax.GradientTransformation, *, batch_size: int,
                    image_size: int, ignore_index: int = 255, shards: int | None = None) -> flopmeter.Cost:
    """`flopmeter.Cost` of one fine-tuning step at ``batch_size`` x ``image_size``^2 (3 channels); ``shards``:
    `make_finetune_step`'s (per-device SAM)."""
    for name, value in (("batch_size", batch_size), ("image_size", image_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}: expected a positive int")
    state = eqx.filter_eval_shape(lambda m: init_finetune_state(m, optimizer, key=jr.key(0)), model)
    batch = {"image": jax.ShapeDtypeStruct((batch_size, image_size, image_size, 3), jnp.float32),
             "mask": jax.ShapeDtypeStruct((batch_size, image_size, image_size), jnp.int32)}
    return runloop.measure_step(make_finetune_step(optimizer, ignore_index=ignore_index, shards=shards), state, batch)
