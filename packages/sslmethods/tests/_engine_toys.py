"""Tiny methods and data for the engine's tests (the real methods are tested in their own files).

``ToyClassifier``: a one-hidden-layer MLP on flattened images with softmax cross-entropy; views add key-driven
noise so per-step randomness matters. ``ToyTeacher``: the same plus a non-trainable EMA teacher and a global-batch
centre (the shape of BYOL/DINO state), so sharding and resume cover method state. ``SyntheticData``: a
deterministic, checkpointable numpy batch iterator (the ``get_state``/``set_state`` face of grain's iterators).
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import vitcore
from jaxtyping import Array, Float, Int, PRNGKeyArray
from sslmethods.methods.method import AbstractMethod, Batch

# The toys are no ViTs; a config is what every method's constructor takes (its input size: 8x8, one channel).
TOY_BACKBONE = vitcore.get_config("vit-test", image_size=8, patch_size=4, in_channels=1, mean=(0.0,), std=(1.0,))


class ToyOutput(NamedTuple):
    pooled: Float[Array, "b d"]
    logits: Float[Array, "b k"]


class ToyEncoder(eqx.Module):
    hidden: eqx.nn.Linear
    head: eqx.nn.Linear

    def __call__(self, images: Float[Array, "b h w c"], *, key: Any = None, inference: bool = True) -> ToyOutput:
        del key, inference
        x = images.reshape(images.shape[0], -1)
        pooled = jax.nn.gelu(jax.vmap(self.hidden)(x))
        return ToyOutput(pooled=pooled, logits=jax.vmap(self.head)(pooled))


def _xent(logits: Float[Array, "b k"], labels: Int[Array, " b"]) -> Float[Array, ""]:
    logp = jax.nn.log_softmax(logits.astype(jnp.float32))
    return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))


class ToyClassifier(AbstractMethod):
    name: ClassVar[str] = "toy"
    backbone: vitcore.ViTConfig = eqx.field(static=True, kw_only=True, default=TOY_BACKBONE)
    total_steps: int = eqx.field(static=True, kw_only=True, default=100)
    image_shape: tuple[int, int, int] = eqx.field(static=True, default=(8, 8, 1))
    hidden: int = eqx.field(static=True, default=16)
    num_classes: int = eqx.field(static=True, default=4)
    noise: float = eqx.field(static=True, default=0.05)

    def init(self, *, key: PRNGKeyArray) -> tuple[eqx.Module, Any]:
        k1, k2 = jax.random.split(key)
        d = int(np.prod(self.image_shape))
        return ToyEncoder(eqx.nn.Linear(d, self.hidden, key=k1), eqx.nn.Linear(self.hidden, self.num_classes,
                                                                               key=k2)), {}

    def batch_spec(self, batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
        return {"image": jax.ShapeDtypeStruct((batch_size, *self.image_shape), jnp.float32),
                "label": jax.ShapeDtypeStruct((batch_size,), jnp.int32)}

    def analytic_macs(self, batch_size: int) -> float:
        """Forward + backward (3x) of the two matmuls."""
        return float(3 * batch_size * (int(np.prod(self.image_shape)) + self.num_classes) * self.hidden)

    def views(self, batch: Batch, *, step: Int[Array, ""], key: PRNGKeyArray) -> Batch:
        del step
        if self.noise == 0.0:
            return {"image": batch["image"], "label": batch["label"]}
        noise = self.noise * jax.random.normal(key, batch["image"].shape, jnp.float32)
        return {"image": batch["image"] + noise, "label": batch["label"]}

    def loss(self, trainable: eqx.Module, state: Any, views: Batch, *, step: Int[Array, ""],
             key: PRNGKeyArray) -> tuple[Float[Array, ""], dict[str, Any]]:
        del state, step, key
        out = trainable(views["image"])
        loss = _xent(out.logits, views["label"])
        acc = jnp.mean((jnp.argmax(out.logits, -1) == views["label"]).astype(jnp.float32))
        return loss, {"metrics": {"accuracy": acc}}

    def update_state(self, trainable: eqx.Module, state: Any, aux: dict[str, Any], *, step: Int[Array, ""]) -> Any:
        del trainable, aux, step
        return state

    def encoder(self, trainable: eqx.Module) -> eqx.Module:
        return trainable

    def weight_decay_mask(self, trainable: eqx.Module) -> Any:
        arrays = eqx.filter(trainable, eqx.is_array)
        return jax.tree_util.tree_map_with_path(lambda path, _: path[-1].name == "weight", arrays)


class ToyTeacher(ToyClassifier):
    """ToyClassifier + an EMA teacher (momentum 0.9) + a centre = EMA of the global-batch teacher logit mean."""

    name: ClassVar[str] = "toy_teacher"

    def init(self, *, key: PRNGKeyArray) -> tuple[eqx.Module, Any]:
        trainable, _ = super().init(key=key)
        teacher = eqx.filter(trainable, eqx.is_array)
        return trainable, {"teacher": teacher, "centre": jnp.zeros((self.num_classes,), jnp.float32)}

    def loss(self, trainable: eqx.Module, state: Any, views: Batch, *, step: Int[Array, ""],
             key: PRNGKeyArray) -> tuple[Float[Array, ""], dict[str, Any]]:
        base, aux = super().loss(trainable, state, views, step=step, key=key)
        _, static = eqx.partition(trainable, eqx.is_array)
        teacher = eqx.combine(jax.lax.stop_gradient(state["teacher"]), static)
        t_logits = teacher(views["image"]).logits - state["centre"]
        s_logits = trainable(views["image"]).logits
        distill = jnp.mean(jnp.sum(jax.nn.softmax(t_logits) * -jax.nn.log_softmax(s_logits), -1))
        aux["batch_centre"] = jnp.mean(t_logits + state["centre"], axis=0)
        return base + 0.5 * distill, aux

    def update_state(self, trainable: eqx.Module, state: Any, aux: dict[str, Any], *, step: Int[Array, ""]) -> Any:
        del step
        student = eqx.filter(trainable, eqx.is_array)
        teacher = jax.tree.map(lambda t, s: 0.9 * t + 0.1 * s, state["teacher"], student)
        centre = 0.9 * state["centre"] + 0.1 * aux["batch_centre"]
        return {"teacher": teacher, "centre": centre}


class SyntheticData:
    """Deterministic numpy batches: batch ``i`` depends only on (seed, i); ``get_state`` is JSON-able."""

    def __init__(self, batch_size: int, image_shape: tuple[int, int, int] = (8, 8, 1), num_classes: int = 4,
                 seed: int = 0) -> None:
        self.batch_size, self.image_shape, self.num_classes, self.seed = batch_size, image_shape, num_classes, seed
        self.index = 0
        rng = np.random.default_rng(1234)
        self.prototypes = rng.uniform(0, 1, (num_classes, *image_shape)).astype(np.float32)

    def batch_at(self, index: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, index])
        labels = rng.integers(0, self.num_classes, self.batch_size).astype(np.int32)
        noise = rng.normal(0, 0.2, (self.batch_size, *self.image_shape)).astype(np.float32)
        return {"image": np.clip(self.prototypes[labels] + noise, 0, 1).astype(np.float32), "label": labels}

    def __iter__(self) -> SyntheticData:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        batch = self.batch_at(self.index)
        self.index += 1
        return batch

    def get_state(self) -> dict[str, Any]:
        return {"index": self.index, "seed": self.seed}

    def set_state(self, state: dict[str, Any]) -> None:
        self.index, self.seed = int(state["index"]), int(state["seed"])
