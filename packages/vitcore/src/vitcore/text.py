"""BERT-style pre-norm text encoders for CLIP (`text-mini`, `text-medium`)."""

import dataclasses
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .block import Block, dropout
from .config import compute_dtype_of
from .linear import LayerNorm, trunc_normal
from .stack import BlockStack
from .tokenizer import VOCAB_SIZE


@dataclasses.dataclass(frozen=True)
class TextConfig:
    """Text encoder architecture. `max_length` is the number of learned positions (>= tokenized length)."""

    width: int
    depth: int
    num_heads: int
    vocab_size: int = VOCAB_SIZE
    max_length: int = 64
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    drop_path: float = 0.0
    layer_norm_eps: float = 1e-6
    compute_dtype: str = "float32"  # "float32" | "bfloat16"
    scan_layers: bool = False

    def __post_init__(self):
        for name in ("width", "depth", "num_heads", "vocab_size", "max_length"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TextConfig.{name}={value!r}; expected a positive int")
        if self.width % self.num_heads:
            raise ValueError(f"TextConfig.width={self.width} is not divisible by num_heads={self.num_heads}")
        compute_dtype_of(self.compute_dtype)


TEXT_PRESETS: dict[str, TextConfig] = {
    "text-mini": TextConfig(width=256, depth=4, num_heads=4),
    "text-medium": TextConfig(width=512, depth=8, num_heads=8),
    "text-test": TextConfig(width=32, depth=1, num_heads=2, max_length=16),
}


class TextOutput(NamedTuple):
    """pooled: [b, d] the final-normed CLS (first) token; tokens: [b, L, d] all final-normed tokens."""

    pooled: Float[Array, "b d"]
    tokens: Float[Array, "b l d"]


class TokenEmbedding(eqx.Module):
    """Lookup table [vocab, d]; out-of-range ids are clamped to the table (mode="clip"), never NaN."""

    weight: Float[Array, "v d"]

    def __call__(self, ids: Int[Array, " l"]) -> Float[Array, "l d"]:
        return jnp.take(self.weight, ids, axis=0, mode="clip")


class TextEncoder(eqx.Module):
    """Token + learned position embeddings, pre-norm blocks with key padding masks, final LayerNorm."""

    config: TextConfig = eqx.field(static=True)
    token_embed: TokenEmbedding
    pos_embed: Float[Array, "l d"]
    blocks: BlockStack
    norm: LayerNorm

    def __init__(self, config: TextConfig, *, key: PRNGKeyArray):
        c = config
        k_tok, k_pos, k_blocks = jr.split(key, 3)
        self.config = c
        self.token_embed = TokenEmbedding(trunc_normal(k_tok, (c.vocab_size, c.width)))
        self.pos_embed = trunc_normal(k_pos, (c.max_length, c.width), std=0.01)

        def make_block(k):
            return Block(
                c.width,
                c.num_heads,
                int(c.width * c.mlp_ratio),
                key=k,
                eps=c.layer_norm_eps,
                dropout_rate=c.dropout,
            )

        self.blocks = BlockStack(make_block, c.depth, key=k_blocks, drop_path=c.drop_path, scan=c.scan_layers)
        self.norm = LayerNorm(c.width, eps=c.layer_norm_eps)

    def __call__(
        self,
        token_ids: Int[Array, "b l"],
        padding_mask: Bool[Array, "b l"],
        *,
        key: PRNGKeyArray | None = None,
        inference: bool = True,
    ) -> TextOutput:
        """`padding_mask` True = real token (as returned by `vitcore.tokenize`); padded keys are never
        attended."""
        c = self.config
        if token_ids.ndim != 2 or token_ids.shape != padding_mask.shape:
            raise ValueError(
                f"token_ids {token_ids.shape} and padding_mask {padding_mask.shape} must both be [b, L]"
            )
        if token_ids.shape[1] > c.max_length:
            raise ValueError(f"token_ids has length {token_ids.shape[1]} > max_length={c.max_length}")
        stochastic = not inference and (c.dropout > 0 or c.drop_path > 0)
        if stochastic and key is None:
            raise ValueError("key=None with inference=False and dropout/drop_path > 0; pass key=")
        keys = jr.split(key, token_ids.shape[0]) if stochastic else None

        def one(ids, mask, k):
            k_drop, k_blocks = jr.split(k) if k is not None else (None, None)
            cdt = compute_dtype_of(c.compute_dtype)
            x = self.token_embed(ids) + self.pos_embed[: ids.shape[0]]
            x = dropout(x.astype(cdt), c.dropout, k_drop)
            x, _ = self.blocks(x, mask=mask, key=k_blocks)
            return self.norm(x).astype(jnp.float32)

        tokens = jax.vmap(one)(token_ids, padding_mask, keys)
        return TextOutput(tokens[:, 0], tokens)


def create_text(preset: str, *, key: PRNGKeyArray, **overrides) -> TextEncoder:
    """A text encoder from a preset (`text-mini`: 4 x 256, `text-medium`: 8 x 512, `text-test`: tiny)."""
    if preset not in TEXT_PRESETS:
        raise ValueError(f"preset={preset!r} is not a text preset; expected one of {sorted(TEXT_PRESETS)}")
    fields = {f.name for f in dataclasses.fields(TextConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"unknown TextConfig override(s) {unknown}; valid fields are {sorted(fields)}")
    return TextEncoder(dataclasses.replace(TEXT_PRESETS[preset], **overrides), key=key)
