"""`NFNet`: Normalizer-Free ResNets (Brock, De, Smith, Simonyan 2021, "High-Performance Large-Scale Image
Recognition Without Normalization"), the DeepMind layout (deepmind-research nfnets/nfnet.py).

stem (four 3x3 WS convs, strides 2, 1, 1, 2) -> four stages of `NFBlock`s (strides 1, 2, 2, 2) -> 1x1 final
conv (2x the last stage's width) -> gamma * GELU -> global mean pool -> dropout -> linear head (normal(0.01)).
No normalisation layers: signal propagation is kept by scaled weight standardisation, the beta/alpha residual
scalars and the activation gain gamma.
"""

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from .backbone import AbstractBackbone
from .block import dropout
from .config import compute_dtype_of, image_hw
from .linear import Linear
from .nfnet_block import NFBlock, haiku_linear, nf_activation
from .nfnet_config import NFNET_STRIDE, NFNetConfig
from .stack import normalize_indices
from .ws_conv import WSConv2d


class NFNetOutput(NamedTuple):
    """Outputs of `NFNet.__call__` (all float32).

    logits: [b, num_classes], None without a head.
    pooled: [b, num_features], the spatial mean of `patch_tokens` (before dropout).
    patch_tokens: [b, h/32, w/32, num_features], the final features (final conv, then gamma * activation);
        named as the ViT's field so transfer code reads either backbone.
    intermediates: raw outputs (the residual stream, before any activation) of the requested stages,
        [b, h/stride, w/stride, channels] as `feature_info`.
    """

    logits: Float[Array, "b k"] | None
    pooled: Float[Array, "b d"]
    patch_tokens: Float[Array, "b gh gw d"]
    intermediates: tuple[Float[Array, "b _h _w _c"], ...]


class NFNet(AbstractBackbone):
    """Normalizer-Free Network; call on a float32 NHWC batch (any size that is a multiple of 32).

    Backbone face: `feature_info` has one entry per stage (stride 4, 8, 16, 32); `intermediates` and
    `feature_maps` both return stage outputs [b, h/stride, w/stride, c]; `weight_decay_mask()` decays conv and
    linear weights only (no decay on gains, biases, skip gains: as DeepMind's optimiser groups).
    """

    config: NFNetConfig = eqx.field(static=True)
    stem: tuple[WSConv2d, ...]
    stages: tuple[tuple[NFBlock, ...], ...]
    final_conv: WSConv2d
    head: Linear | None

    def __init__(self, config: NFNetConfig, *, key: PRNGKeyArray):
        c = config
        k_stem, k_stages, k_final, k_head = jr.split(key, 4)
        self.config = c
        stem_out = (*c.stem_widths, c.widths[0] // 2)
        stem_in = (c.in_channels, *stem_out[:-1])
        self.stem = tuple(
            WSConv2d(i, o, 3, key=k, stride=s)
            for i, o, k, s in zip(stem_in, stem_out, jr.split(k_stem, 4), (2, 1, 1, 2), strict=True)
        )
        stages, channels = [], stem_out[-1]
        stage_keys = jr.split(k_stages, len(c.depths))
        for s, (depth, out, width) in enumerate(zip(c.depths, c.widths, c.block_widths, strict=True)):
            blocks = []
            for i, k in enumerate(jr.split(stage_keys[s], depth)):
                blocks.append(
                    NFBlock(
                        channels,
                        out,
                        width,
                        key=k,
                        group_size=c.group_size,
                        se_ratio=c.se_ratio,
                        stride=2 if s > 0 and i == 0 else 1,
                        alpha=c.alpha,
                        beta=c.betas[s][i],
                        drop_path_rate=c.drop_path_rates[s][i],
                        activation=c.activation,
                        gamma=c.gamma,
                    )
                )
                channels = out
            stages.append(tuple(blocks))
        self.stages = tuple(stages)
        self.final_conv = WSConv2d(channels, c.num_features, 1, key=k_final)
        if c.num_classes:
            self.head = haiku_linear(c.num_features, c.num_classes, key=k_head, std=c.head_init_std)
        else:
            self.head = None

    def _check_image_size(self, h: int, w: int) -> None:
        if h < NFNET_STRIDE or w < NFNET_STRIDE or h % NFNET_STRIDE or w % NFNET_STRIDE:
            raise ValueError(
                f"images has spatial size {(h, w)}; an NFNet needs multiples of {NFNET_STRIDE} (its total stride)"
            )

    def _features(
        self, image: Float[Array, "h w c"], key: PRNGKeyArray | None, collect: tuple[int, ...]
    ) -> tuple[Float[Array, "gh gw d"], tuple[Float[Array, "_h _w _c"], ...]]:
        c = self.config
        x = self.normalise(image).astype(compute_dtype_of(c.compute_dtype))
        for i, conv in enumerate(self.stem):
            x = conv(x) if i == 0 else conv(nf_activation(x, c.activation, c.gamma))
        stage_keys = jr.split(key, len(self.stages)) if key is not None else (None,) * len(self.stages)
        outs = {}
        for s, blocks in enumerate(self.stages):
            block_keys = jr.split(stage_keys[s], len(blocks)) if key is not None else (None,) * len(blocks)
            for block, k in zip(blocks, block_keys, strict=True):
                x = block(x, key=k)
            if s in collect:
                outs[s] = x.astype(jnp.float32)
        x = nf_activation(self.final_conv(x), c.activation, c.gamma)
        return x.astype(jnp.float32), tuple(outs[s] for s in collect)

    def __call__(
        self,
        images: Float[Array, "b h w c"],
        *,
        key: PRNGKeyArray | None = None,
        inference: bool = True,
        intermediates: Sequence[int] = (),
    ) -> NFNetOutput:
        """Encode a float32 NHWC batch of [0, 1] pixels (normalised here with the config's `mean`/`std`).

        key: needed when `inference=False` and the config has dropout or drop_path.
        intermediates: stage indices (0..3, negative counts from the end) whose raw outputs to return.
        """
        c = self.config
        self._check_images(images)
        collect = normalize_indices(intermediates, len(c.depths))
        keys = self._example_keys(key, inference=inference, batch=images.shape[0])

        def one(image, k):
            k_blocks, k_drop = jr.split(k) if k is not None else (None, None)
            features, inter = self._features(image, k_blocks, collect)
            pooled = jnp.mean(features, axis=(0, 1))
            return features, pooled, dropout(pooled, c.dropout, k_drop), inter

        patch_tokens, pooled, head_in, inter = jax.vmap(one)(images, keys)
        logits = jax.vmap(self.head)(head_in) if self.head is not None else None
        return NFNetOutput(logits, pooled, patch_tokens, inter)

    def feature_maps(
        self, images: Float[Array, "b h w c"], indices: Sequence[int]
    ) -> tuple[Float[Array, "b _h _w _c"], ...]:
        """Stage outputs `indices` (the same arrays as `intermediates`)."""
        return self.intermediates(images, indices)

    def with_image_size(self, image_size: int | tuple[int, int]) -> "NFNet":
        """The same weights with `config.image_size = image_size` (a multiple of 32; the network itself does not
        depend on the size); `self` when the size is unchanged."""
        if image_hw(image_size) == image_hw(self.config.image_size):
            return self
        config = dataclasses.replace(self.config, image_size=image_size)  # validates the multiple of 32
        # The config is a static field: rebuild the tree with the new config's structure around the same leaves.
        structure = jax.tree.structure(eqx.filter_eval_shape(NFNet, config, key=jr.key(0)))
        return jax.tree.unflatten(structure, jax.tree.leaves(self))
