"""`AbstractBackbone`: the face every vitcore image backbone (ViT, NFNet) shows to methods and transfer code.

A backbone takes a float32 NHWC batch of [0, 1] pixels, normalises it itself (`normalise`: the config's
`mean`/`std`, in float32, before anything else) and returns an output with at least

    logits         [b, num_classes] (None without a head)
    pooled         [b, num_features], the pooled final features
    patch_tokens   [b, h/s, w/s, num_features], the final feature map (s = `output_stride`)
    intermediates  the raw features of the requested indices (see `feature_info`)

Code outside vitcore types against this class and reads sizes from `feature_info` / `num_features` /
`output_stride`, never from a family's config fields.
"""

import abc
import dataclasses
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, Float, Key, PRNGKeyArray, PyTree, UInt32

from .linear import Linear
from .normalisation import normalise_images
from .weight_decay import weight_decay_mask


@dataclasses.dataclass(frozen=True)
class FeatureInfo:
    """One entry of `feature_info` (timm's `feature_info`): `feature_maps(images, [i])[0]` has `channels`
    channels at 1/`stride` of the input resolution. `name` is the module the feature is taken from."""

    name: str
    channels: int
    stride: int


class AbstractBackbone(eqx.Module):
    """An image backbone built from a frozen config (`config`) with an optional linear classifier (`head`).

    Subclasses implement `__call__` (checking its input with `_check_images` and `_example_keys`),
    `_check_image_size`, `feature_maps` and define `config`/`head`; the config provides
    `feature_info`, `num_features` and `output_stride` (static: readable on an `eqx.filter_eval_shape` model).
    """

    config: eqx.AbstractVar[Any]
    head: eqx.AbstractVar[Linear | None]

    @abc.abstractmethod
    def __call__(
        self,
        images: Float[Array, "b h w c"],
        *,
        key: PRNGKeyArray | None = None,
        inference: bool = True,
        intermediates: Sequence[int] = (),
    ) -> Any:
        """Encode a float32 NHWC batch; the output has `.logits`, `.pooled`, `.patch_tokens`, `.intermediates`.

        `key` is needed when `inference=False` and the config has dropout or stochastic depth.
        """

    @abc.abstractmethod
    def feature_maps(self, images: Float[Array, "b h w c"], indices: Sequence[int]) -> tuple[Array, ...]:
        """Spatial maps [b, h/stride, w/stride, channels] of the features `indices` (as `feature_info`; negative
        indices count from the end), for segmentation and detection necks."""

    def _check_images(self, images: Any) -> None:
        """ValueError/TypeError, naming ``images``, unless it is a float NHWC batch with the config's
        ``in_channels`` and a spatial size the family takes (`_check_image_size`)."""
        channels = self.config.in_channels
        if not isinstance(images, jax.Array | np.ndarray) or images.ndim != 4:
            got = getattr(images, "shape", type(images).__name__)
            raise ValueError(f"images has shape {got}; expected a rank-4 NHWC batch [b, h, w, {channels}]")
        _, h, w, ch = images.shape
        if ch != channels:
            raise ValueError(
                f"images has {ch} channels (shape {images.shape}); expected {channels} in the last axis "
                "(NHWC). If you passed NCHW, transpose with images.transpose(0, 2, 3, 1)"
            )
        self._check_image_size(h, w)
        if not jnp.issubdtype(images.dtype, jnp.floating):
            raise TypeError(f"images has dtype {images.dtype}; expected a float array")

    @abc.abstractmethod
    def _check_image_size(self, h: int, w: int) -> None:
        """ValueError when the family does not take images of ``h`` x ``w`` pixels."""

    def _example_keys(
        self, key: PRNGKeyArray | None, *, inference: bool, batch: int
    ) -> Key[Array, " b"] | UInt32[Array, "b 2"] | None:
        """One key per example when the pass is stochastic (training with the config's dropout or drop path),
        else None; ValueError when it is stochastic and ``key`` is None."""
        stochastic = not inference and (self.config.dropout > 0 or self.config.drop_path > 0)
        if stochastic and key is None:
            raise ValueError("key=None with inference=False and dropout/drop_path > 0; pass key=jax.random.key(..)")
        return jr.split(key, batch) if stochastic else None

    def normalise(self, images: Float[Array, "*batch c"]) -> Float[Array, "*batch c"]:
        """The backbone's input normalisation, ``(images - config.mean) / config.std`` in float32: what `__call__`
        applies to its [0, 1] pixels first. Public so that a method's pixel targets (MAE) use the same."""
        return normalise_images(images, self.config.mean, self.config.std)

    @property
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        """Channels and stride of every index `intermediates` / `feature_maps` accept."""
        return self.config.feature_info

    @property
    def num_features(self) -> int:
        """Channels of `pooled` and `patch_tokens` (the head's input width)."""
        return self.config.num_features

    @property
    def output_stride(self) -> int:
        """Stride of `patch_tokens` relative to the input image."""
        return self.config.output_stride

    @abc.abstractmethod
    def with_image_size(self, image_size: int | tuple[int, int]) -> "AbstractBackbone":
        """The same weights for inputs of `image_size` (`config.image_size` becomes it): a ViT resamples its
        learned position embedding (`interpolate_pos_embed`; sin-cos tables are recomputed), an NFNet (any
        multiple of 32) only records the size. The model itself when the size is unchanged."""

    def intermediates(self, images: Float[Array, "b h w c"], indices: Sequence[int]) -> tuple[Array, ...]:
        """The raw features of `indices` (timm's `forward_intermediates` with norm=False)."""
        return self(images, intermediates=indices).intermediates

    def without_head(self) -> "AbstractBackbone":
        """The same backbone (same weights) with no classifier: `num_classes=0`, `logits` None."""
        if self.head is None:
            return self
        config = dataclasses.replace(self.config, num_classes=0)
        headless = eqx.tree_at(lambda m: m.head, self, None)
        # config is a static field: rebuild the tree around the same leaves with the new config's structure.
        structure = jax.tree.structure(eqx.filter_eval_shape(type(self), config, key=jr.key(0)))
        return jax.tree.unflatten(structure, jax.tree.leaves(headless))

    def weight_decay_mask(self) -> PyTree[bool]:
        """Bools shaped like `eqx.filter(self, eqx.is_array)`: True for conv/matmul/embedding `weight` leaves;
        False for biases, norm scales/offsets, gains, position embeddings and tokens (see
        `vitcore.weight_decay_mask`)."""
        return weight_decay_mask(self)
