"""FLOPs of one fine-tuning step, measured by `flopmeter.measure` on the real `train_step`, abstractly.

The step measured is the one `segtransfer.run` executes: forward + backward through encoder and FCN head, global
norm clip, Adam, weight decay and the learning-rate schedule, returning the new model and optimizer state (so XLA
keeps the backward pass and the update; DESIGN.md section 6). Arguments are `jax.ShapeDtypeStruct`s: nothing is
allocated or run. The count is for the global batch as one program; data parallelism adds communication, not
FLOPs.

Example::

    cost = train_step_cost(model, optimizer, batch_size=16, image_size=512)
    cost.flops * num_steps      # fine-tuning FLOPs of the run
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import optax

from .finetune import train_step
from .segmenter import Segmenter

__all__ = ["train_step_cost"]


def train_step_cost(model: Segmenter, optimizer: optax.GradientTransformation, *, batch_size: int,
                    image_size: int, ignore_index: int = 255):
    """`flopmeter.Cost` of one `segtransfer.train_step` at ``batch_size`` x ``image_size``^2 (3 channels)."""
    import flopmeter  # here: only runs that measure cost need it

    for name, value in (("batch_size", batch_size), ("image_size", image_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}: expected a positive int")
    params = eqx.filter(model, eqx.is_array)
    opt_state = jax.eval_shape(optimizer.init, params)
    images = jax.ShapeDtypeStruct((batch_size, image_size, image_size, 3), jnp.float32)
    masks = jax.ShapeDtypeStruct((batch_size, image_size, image_size), jnp.int32)
    key = jax.eval_shape(lambda: jr.key(0))
    return flopmeter.measure(
        train_step, model, opt_state, images, masks, optimizer=optimizer, key=key, ignore_index=ignore_index
    )
