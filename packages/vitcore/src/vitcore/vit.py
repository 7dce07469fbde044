"""`ViT`: the Vision Transformer backbone (timm layout) and position-embedding interpolation."""

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .backbone import AbstractBackbone
from .block import Block, dropout
from .config import ViTConfig, compute_dtype_of, image_hw
from .linear import LayerNorm, Linear, trunc_normal, xavier_uniform
from .pos_embed import resample_grid, sincos_2d
from .stack import BlockStack, normalize_indices


class ViTOutput(NamedTuple):
    """Outputs of `ViT.__call__` (all float32).

    logits: [b, num_classes], None when the model has no head.
    pooled: [b, d], the class token (pool="cls") or the mean of the patch tokens (pool="mean"), after the
    final
        norm.
    tokens: [b, n_prefix + n, d], every output token after the final norm (n = kept count when masked).
    patch_tokens: [b, h/p, w/p, d] grid after the final norm; None when `keep_indices` is given.
    intermediates: outputs of the requested blocks, [b, n_prefix + n, d] each, raw residual stream (NOT
    normed).
    """

    logits: Float[Array, "b k"] | None
    pooled: Float[Array, "b d"]
    tokens: Float[Array, "b n d"]
    patch_tokens: Float[Array, "b gh gw d"] | None
    intermediates: tuple[Float[Array, "b n d"], ...]


class PatchEmbed(eqx.Module):
    """Non-overlapping p x p patches -> width, a stride-p convolution; weight stored OIHW like timm's
    `patch_embed.proj`."""

    weight: Float[Array, "d c p q"]
    bias: Float[Array, " d"]

    def __init__(self, in_channels: int, width: int, patch: int, *, key: PRNGKeyArray, init: str):
        shape = (width, in_channels * patch * patch)
        w = xavier_uniform(key, shape) if init == "xavier" else trunc_normal(key, shape)
        self.weight = w.reshape(width, in_channels, patch, patch)
        self.bias = jnp.zeros((width,), jnp.float32)

    def __call__(self, x: Float[Array, "h w c"]) -> Float[Array, "gh gw d"]:
        p = self.weight.shape[-1]
        h, w, c = x.shape
        x = x.reshape(h // p, p, w // p, p, c)
        y = jnp.einsum("aibjc,dcij->abd", x, self.weight.astype(x.dtype))
        return y + self.bias.astype(x.dtype)


class ViT(AbstractBackbone):
    """Vision Transformer: patch embedding, optional class token, position embedding, pre-norm blocks, final
    LayerNorm, optional linear head. Call on a float32 NHWC batch; see `__call__`.

    Backbone face: `feature_info` has one entry per block (width channels, stride patch_size);
    `intermediates` are raw token sequences [b, n_prefix + n, d], `feature_maps` the same blocks' patch rows
    as [b, h/p, w/p, d] grids."""

    config: ViTConfig = eqx.field(static=True)
    patch_embed: PatchEmbed
    cls_token: Float[Array, "1 d"] | None
    pos_embed: Float[Array, "n d"] | None  # learned only; rows = prefix tokens then patches (row-major)
    blocks: BlockStack
    norm: LayerNorm
    head: Linear | None

    def __init__(self, config: ViTConfig, *, key: PRNGKeyArray):
        c = config
        k_patch, k_cls, k_pos, k_blocks, k_head = jr.split(key, 5)
        self.config = c
        self.patch_embed = PatchEmbed(c.in_channels, c.width, c.patch_size, key=k_patch, init=c.init)
        if c.class_token:
            # MAE draws the class token from normal(0.02); timm's trunc_normal(0.02) is the same to 2 std.
            self.cls_token = trunc_normal(k_cls, (1, c.width))
        else:
            self.cls_token = None
        if c.pos_embed == "learned":
            self.pos_embed = trunc_normal(k_pos, (c.num_prefix_tokens + c.num_patches, c.width))
        else:
            self.pos_embed = None

        def make_block(k):
            return Block(
                c.width,
                c.num_heads,
                c.mlp_width,
                key=k,
                qkv_bias=c.qkv_bias,
                eps=c.layer_norm_eps,
                dropout_rate=c.dropout,
                init=c.init,
            )

        self.blocks = BlockStack(make_block, c.depth, key=k_blocks, drop_path=c.drop_path, scan=c.scan_layers)
        self.norm = LayerNorm(c.width, eps=c.layer_norm_eps)
        if c.num_classes:
            self.head = Linear(c.width, c.num_classes, key=k_head, init=c.init, bias_init=c.head_bias_init)
        else:
            self.head = None

    @property
    def grid_size(self) -> tuple[int, int]:
        return self.config.grid_size

    @property
    def num_prefix_tokens(self) -> int:
        return self.config.num_prefix_tokens

    @property
    def width(self) -> int:
        return self.config.width

    def _check_image_size(self, h: int, w: int) -> None:
        c = self.config
        if h % c.patch_size or w % c.patch_size:
            raise ValueError(f"images has spatial size {(h, w)}, not divisible by patch_size={c.patch_size}")
        if (h, w) != image_hw(c.image_size):
            raise ValueError(
                f"images has spatial size {(h, w)}; this model expects {image_hw(c.image_size)}. Resize the "
                "images, or use vitcore.interpolate_pos_embed(model, image_size) for a new resolution"
            )

    def _embed(self, image: Float[Array, "h w c"], keep: Int[Array, " k"] | None) -> Float[Array, "n d"]:
        c = self.config
        cdt = compute_dtype_of(c.compute_dtype)
        x = self.patch_embed(self.normalise(image).astype(cdt)).reshape(c.num_patches, c.width)
        n_pre = c.num_prefix_tokens
        if self.pos_embed is not None:
            patch_pos, prefix_pos = self.pos_embed[n_pre:], self.pos_embed[:n_pre]
        else:
            patch_pos = jnp.asarray(sincos_2d(c.width, c.grid_size))
            prefix_pos = jnp.zeros((n_pre, c.width), jnp.float32)
        x = x + patch_pos.astype(cdt)
        if keep is not None:
            x = jnp.take(x, keep, axis=0, mode="clip")
        if self.cls_token is not None:
            x = jnp.concatenate([(self.cls_token + prefix_pos).astype(cdt), x], axis=0)
        return x

    def __call__(
        self,
        images: Float[Array, "b h w c"],
        *,
        key: PRNGKeyArray | None = None,
        inference: bool = True,
        keep_indices: Int[Array, "b k"] | None = None,
        intermediates: Sequence[int] = (),
    ) -> ViTOutput:
        """Encode a float32 NHWC batch of [0, 1] pixels (normalised here with the config's `mean`/`std`).

        key: needed when `inference=False` and the config has dropout or drop path.
        keep_indices: [b, k] patch indices (row-major, 0..n-1) per example; the encoder then sees only those
            patch tokens (plus the class token), in that order: the MAE encoder. Indices are not range-checked
            under jit (out-of-range indices are clamped to [0, n-1]).
        intermediates: block indices (negative counts from the end) whose raw outputs to return.
        """
        c = self.config
        self._check_images(images)
        b = images.shape[0]
        if keep_indices is not None:
            if keep_indices.ndim != 2 or keep_indices.shape[0] != b:
                raise ValueError(f"keep_indices has shape {keep_indices.shape}; expected [b={b}, k]")
            if not jnp.issubdtype(keep_indices.dtype, jnp.integer):
                raise TypeError(f"keep_indices has dtype {keep_indices.dtype}; expected integers")
        collect = normalize_indices(intermediates, c.depth)
        keys = self._example_keys(key, inference=inference, batch=b)

        def one(image, keep, k):
            k_drop, k_blocks = jr.split(k) if k is not None else (None, None)
            x = dropout(self._embed(image, keep), c.dropout, k_drop)
            x, inter = self.blocks(x, key=k_blocks, collect=collect)
            return self.norm(x).astype(jnp.float32), tuple(t.astype(jnp.float32) for t in inter)

        tokens, inter = jax.vmap(one)(images, keep_indices, keys)
        n_pre = c.num_prefix_tokens
        pooled = tokens[:, 0] if c.pool == "cls" else jnp.mean(tokens[:, n_pre:], axis=1)
        logits = jax.vmap(self.head)(pooled) if self.head is not None else None
        patch_tokens = None
        if keep_indices is None:
            patch_tokens = tokens[:, n_pre:].reshape(b, *c.grid_size, c.width)
        return ViTOutput(logits, pooled, tokens, patch_tokens, inter)

    def with_image_size(self, image_size: int | tuple[int, int]) -> "ViT":
        """`interpolate_pos_embed(self, image_size)`; `self` when the size is unchanged."""
        if image_hw(image_size) == image_hw(self.config.image_size):
            return self
        return interpolate_pos_embed(self, image_size)

    def feature_maps(
        self, images: Float[Array, "b h w c"], indices: Sequence[int]
    ) -> tuple[Float[Array, "b gh gw d"], ...]:
        """Raw outputs of blocks `indices` without the prefix tokens, as patch grids [b, h/p, w/p, d]."""
        n_pre = self.num_prefix_tokens
        b = images.shape[0]
        return tuple(
            t[:, n_pre:].reshape(b, *self.grid_size, self.width) for t in self.intermediates(images, indices)
        )


def interpolate_pos_embed(model: ViT, image_size: int | tuple[int, int]) -> ViT:
    """The same model for a new input resolution: learned patch position embeddings are resampled bicubically
    on
    the grid (prefix rows kept as they are); sin-cos embeddings are recomputed for the new grid."""
    config = dataclasses.replace(model.config, image_size=image_size)  # validates divisibility
    if model.pos_embed is not None:
        n_pre = model.num_prefix_tokens
        prefix, grid = model.pos_embed[:n_pre], model.pos_embed[n_pre:]
        new = jnp.concatenate([prefix, resample_grid(grid, model.grid_size, config.grid_size)], axis=0)
        model = eqx.tree_at(lambda m: m.pos_embed, model, new)
    # The config is a static field: rebuild the tree with the new config's structure around the same leaves.
    structure = jax.tree.structure(eqx.filter_eval_shape(ViT, config, key=jr.key(0)))
    return jax.tree.unflatten(structure, jax.tree.leaves(model))
