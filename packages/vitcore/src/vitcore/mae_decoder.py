"""MAE's decoder: mask tokens, fixed 2D sin-cos position embedding, pre-norm blocks, per-patch pixel head."""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .block import Block
from .config import ViTConfig, compute_dtype_of
from .linear import LayerNorm, Linear
from .pos_embed import sincos_2d
from .stack import BlockStack

# Study / MAE paper: default 8 blocks x 512 wide x 16 heads; the "tiny" decoder is a single block.
MAE_DECODER_PRESETS: dict[str, dict[str, int]] = {
    "mae-decoder": {"width": 512, "depth": 8, "num_heads": 16},
    "mae-decoder-tiny": {"width": 512, "depth": 1, "num_heads": 16},
}


@dataclasses.dataclass(frozen=True)
class MAEDecoderConfig:
    """Everything that fixes an `MAEDecoder`. The first four fields describe the encoder it decodes (its
    width, patch grid, patch size and image channels); `MAEDecoderConfig.for_encoder` fills them from a
    `ViTConfig`. Defaults are MAE's decoder: 8 blocks x 512 wide x 16 heads."""

    encoder_width: int
    grid_size: tuple[int, int]
    patch_size: int
    in_channels: int = 3
    width: int = 512
    depth: int = 8
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_prefix_tokens: int = 1
    compute_dtype: str = "float32"  # "float32" | "bfloat16"
    scan_layers: bool = False
    layer_norm_eps: float = 1e-6

    def __post_init__(self):
        for name in ("encoder_width", "patch_size", "in_channels", "width", "depth", "num_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"MAEDecoderConfig.{name}={value!r}; expected a positive int")
        if len(self.grid_size) != 2 or min(self.grid_size) < 1:
            raise ValueError(f"MAEDecoderConfig.grid_size={self.grid_size!r}; expected (gh, gw) >= 1")
        # Stored as a tuple of Python ints (it may arrive as numpy ints or a JSON list).
        object.__setattr__(self, "grid_size", (int(self.grid_size[0]), int(self.grid_size[1])))
        if self.width % self.num_heads or self.width % 4:
            raise ValueError(
                f"MAEDecoderConfig.width={self.width} must be divisible by num_heads={self.num_heads} and by 4 "
                "(sin-cos position embedding)"
            )
        if self.num_prefix_tokens < 0:
            raise ValueError(f"MAEDecoderConfig.num_prefix_tokens={self.num_prefix_tokens!r}; expected >= 0")
        compute_dtype_of(self.compute_dtype)

    @classmethod
    def for_encoder(
        cls,
        encoder: ViTConfig,
        *,
        preset: str = "mae-decoder",
        width: int | None = None,
        depth: int | None = None,
        num_heads: int | None = None,
        **overrides,
    ) -> "MAEDecoderConfig":
        """The decoder of a `MAE_DECODER_PRESETS` preset for `encoder` (width, grid, patch, channels, prefix
        tokens, compute dtype and LayerNorm eps taken from it); `width`/`depth`/`num_heads` override the
        preset when not None, `overrides` set any other field."""
        if preset not in MAE_DECODER_PRESETS:
            raise ValueError(f"preset={preset!r}; expected one of {sorted(MAE_DECODER_PRESETS)}")
        arch = dict(MAE_DECODER_PRESETS[preset])
        for name, value in (("width", width), ("depth", depth), ("num_heads", num_heads)):
            if value is not None:
                arch[name] = value
        from_encoder = {
            "num_prefix_tokens": encoder.num_prefix_tokens,
            "compute_dtype": encoder.compute_dtype,
            "layer_norm_eps": encoder.layer_norm_eps,
        }
        return cls(
            encoder.width,
            encoder.grid_size,
            encoder.patch_size,
            encoder.in_channels,
            **{**arch, **from_encoder, **overrides},
        )


class MAEDecoder(eqx.Module):
    """Call as `decoder(encoded_tokens [b, n_prefix + k, d_enc], ids_restore [b, n]) -> [b, n, p*p*c]`.

    Predicts the pixels of every patch (row-major, (p, p, c) within a patch, as `patchify`); the loss picks
    the masked ones. Initialisation as MAE: xavier-uniform matmuls, normal(0.02) mask token.
    """

    config: MAEDecoderConfig = eqx.field(static=True)
    decoder_embed: Linear
    mask_token: Float[Array, " d"]
    blocks: BlockStack
    decoder_norm: LayerNorm
    decoder_pred: Linear

    def __init__(self, config: MAEDecoderConfig, *, key: PRNGKeyArray):
        c = config
        k_embed, k_mask, k_blocks, k_pred = jr.split(key, 4)
        self.config = c
        self.decoder_embed = Linear(c.encoder_width, c.width, key=k_embed, init="xavier")
        self.mask_token = 0.02 * jr.normal(k_mask, (c.width,), jnp.float32)

        def make_block(k):
            return Block(c.width, c.num_heads, int(c.width * c.mlp_ratio), key=k, eps=c.layer_norm_eps, init="xavier")

        self.blocks = BlockStack(make_block, c.depth, key=k_blocks, scan=c.scan_layers)
        self.decoder_norm = LayerNorm(c.width, eps=c.layer_norm_eps)
        pixels = c.patch_size * c.patch_size * c.in_channels
        self.decoder_pred = Linear(c.width, pixels, key=k_pred, init="xavier")

    @property
    def grid_size(self) -> tuple[int, int]:
        return self.config.grid_size

    @property
    def num_prefix_tokens(self) -> int:
        return self.config.num_prefix_tokens

    @property
    def compute_dtype(self) -> str:
        return self.config.compute_dtype

    def __call__(
        self, encoded_tokens: Float[Array, "b m e"], ids_restore: Int[Array, "b n"]
    ) -> Float[Array, "b n ppc"]:
        b, n = ids_restore.shape
        n_pre = self.num_prefix_tokens
        if n != self.grid_size[0] * self.grid_size[1]:
            raise ValueError(
                f"ids_restore has {n} patches per example; this decoder's grid {self.grid_size} "
                f"has {self.grid_size[0] * self.grid_size[1]}"
            )
        if encoded_tokens.shape[0] != b or not n_pre < encoded_tokens.shape[1] <= n_pre + n:
            raise ValueError(
                f"encoded_tokens has shape {encoded_tokens.shape}; expected [b={b}, "
                f"{n_pre} + k, d] with 0 < k <= {n}"
            )
        return jax.vmap(self._one)(encoded_tokens, ids_restore)

    def _one(self, tokens: Float[Array, "m e"], ids_restore: Int[Array, " n"]) -> Float[Array, "n ppc"]:
        cdt = compute_dtype_of(self.compute_dtype)
        n_pre = self.num_prefix_tokens
        n = ids_restore.shape[0]
        x = self.decoder_embed(tokens.astype(cdt))
        num_mask = n + n_pre - x.shape[0]
        patches = jnp.concatenate(
            [x[n_pre:], jnp.broadcast_to(self.mask_token.astype(cdt), (num_mask, x.shape[1]))]
        )
        patches = jnp.take(patches, ids_restore, axis=0, mode="clip")  # back to row-major patch order
        patches = patches + jnp.asarray(sincos_2d(x.shape[1], self.grid_size)).astype(cdt)
        x = jnp.concatenate([x[:n_pre], patches], axis=0)  # prefix tokens get a zero position embedding (MAE)
        x, _ = self.blocks(x)
        x = self.decoder_pred(self.decoder_norm(x))
        return x[n_pre:].astype(jnp.float32)


def create_mae_decoder(
    encoder_width: int,
    num_patches: int | tuple[int, int],
    patch_size: int,
    in_channels: int = 3,
    *,
    key: PRNGKeyArray,
    preset: str = "mae-decoder",
    **overrides,
) -> MAEDecoder:
    """An `MAEDecoder` from a preset ("mae-decoder": 8 x 512 x 16 heads, "mae-decoder-tiny": 1 block) with any
    `MAEDecoderConfig` field in `overrides`. `num_patches` is the patch grid (gh, gw) or a square count."""
    if preset not in MAE_DECODER_PRESETS:
        raise ValueError(f"preset={preset!r}; expected one of {sorted(MAE_DECODER_PRESETS)}")
    if isinstance(num_patches, int):
        side = int(round(num_patches**0.5))
        if side * side != num_patches:
            raise ValueError(f"num_patches={num_patches} is not a square; pass the grid (gh, gw) instead")
        grid = (side, side)
    else:
        grid = (int(num_patches[0]), int(num_patches[1]))
    arch = {**MAE_DECODER_PRESETS[preset], **overrides}
    return MAEDecoder(MAEDecoderConfig(encoder_width, grid, patch_size, in_channels, **arch), key=key)
