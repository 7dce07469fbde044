"""MAE's decoder: mask tokens, fixed 2D sin-cos position embedding, pre-norm blocks, per-patch pixel head."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .block import Block
from .config import compute_dtype_of
from .linear import LayerNorm, Linear
from .pos_embed import sincos_2d
from .stack import BlockStack

# Study / MAE paper: default 8 blocks x 512 wide x 16 heads; the "tiny" decoder is a single block.
MAE_DECODER_PRESETS: dict[str, dict[str, int]] = {
    "mae-decoder": {"width": 512, "depth": 8, "num_heads": 16},
    "mae-decoder-tiny": {"width": 512, "depth": 1, "num_heads": 16},
}


class MAEDecoder(eqx.Module):
    """Call as `decoder(encoded_tokens [b, n_prefix + k, d_enc], ids_restore [b, n]) -> [b, n, p*p*c]`.

    Predicts the pixels of every patch (row-major, (p, p, c) within a patch, as `patchify`); the loss picks
    the
    masked ones. Initialisation as MAE: xavier-uniform matmuls, normal(0.02) mask token.
    """

    decoder_embed: Linear
    mask_token: Float[Array, " d"]
    blocks: BlockStack
    decoder_norm: LayerNorm
    decoder_pred: Linear
    grid_size: tuple[int, int] = eqx.field(static=True)
    num_prefix_tokens: int = eqx.field(static=True)
    compute_dtype: str = eqx.field(static=True)

    def __init__(
        self,
        encoder_width: int,
        grid_size: tuple[int, int],
        patch_size: int,
        in_channels: int = 3,
        *,
        key: PRNGKeyArray,
        width: int = 512,
        depth: int = 8,
        num_heads: int = 16,
        mlp_ratio: float = 4.0,
        num_prefix_tokens: int = 1,
        compute_dtype: str = "float32",
        scan_layers: bool = False,
        layer_norm_eps: float = 1e-6,
    ):
        if width % num_heads or width % 4:
            raise ValueError(f"width={width} must be divisible by num_heads={num_heads} and by 4 (sin-cos)")
        compute_dtype_of(compute_dtype)
        k_embed, k_mask, k_blocks, k_pred = jr.split(key, 4)
        self.decoder_embed = Linear(encoder_width, width, key=k_embed, init="xavier")
        self.mask_token = 0.02 * jr.normal(k_mask, (width,), jnp.float32)

        def make_block(k):
            return Block(width, num_heads, int(width * mlp_ratio), key=k, eps=layer_norm_eps, init="xavier")

        self.blocks = BlockStack(make_block, depth, key=k_blocks, scan=scan_layers)
        self.decoder_norm = LayerNorm(width, eps=layer_norm_eps)
        self.decoder_pred = Linear(width, patch_size * patch_size * in_channels, key=k_pred, init="xavier")
        self.grid_size = (int(grid_size[0]), int(grid_size[1]))
        self.num_prefix_tokens = num_prefix_tokens
        self.compute_dtype = compute_dtype

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
    width: int | None = None,
    depth: int | None = None,
    num_heads: int | None = None,
    **kwargs,
) -> MAEDecoder:
    """An `MAEDecoder` from a preset ("mae-decoder": 8 x 512 x 16 heads, "mae-decoder-tiny": 1 block), with
    width/depth/num_heads overriding it. `num_patches` is the patch grid (gh, gw) or a square count."""
    if preset not in MAE_DECODER_PRESETS:
        raise ValueError(f"preset={preset!r}; expected one of {sorted(MAE_DECODER_PRESETS)}")
    if isinstance(num_patches, int):
        side = int(round(num_patches**0.5))
        if side * side != num_patches:
            raise ValueError(f"num_patches={num_patches} is not a square; pass the grid (gh, gw) instead")
        grid = (side, side)
    else:
        grid = (int(num_patches[0]), int(num_patches[1]))
    arch = dict(MAE_DECODER_PRESETS[preset])
    for name, value in (("width", width), ("depth", depth), ("num_heads", num_heads)):
        if value is not None:
            arch[name] = value
    return MAEDecoder(encoder_width, grid, patch_size, in_channels, key=key, **arch, **kwargs)
