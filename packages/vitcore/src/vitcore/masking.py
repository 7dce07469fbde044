"""MAE's per-example random masking and the patch <-> image reshapes its loss uses."""

import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, Int, PRNGKeyArray


def random_masking(
    key: PRNGKeyArray, batch: int, num_patches: int, mask_ratio: float
) -> tuple[Int[Array, "b k"], Float[Array, "b n"], Int[Array, "b n"]]:
    """MAE's `random_masking` (facebookresearch/mae, models_mae.py), on indices only.

    Keeps k = int(num_patches * (1 - mask_ratio)) patches per example, chosen uniformly at random.
    Returns (ids_keep [b, k], mask [b, n] float32 with 1 = masked / 0 = kept, ids_restore [b, n]) where
    ids_restore undoes the shuffle: for the kept-then-masked sequence `s`, `s[ids_restore]` is in patch order.
    Example: `ids_keep, mask, ids_restore = random_masking(key, 8, 196, 0.75)`; encode with
    `vit(x, keep_indices=ids_keep)` and decode with `decoder(out.tokens, ids_restore)`.
    """
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio={mask_ratio!r}; expected 0 <= mask_ratio < 1")
    if batch < 1 or num_patches < 1:
        raise ValueError(f"batch={batch}, num_patches={num_patches}; expected positive ints")
    len_keep = int(num_patches * (1 - mask_ratio))
    if len_keep < 1:
        raise ValueError(f"mask_ratio={mask_ratio} keeps no patch out of num_patches={num_patches}")
    noise = jr.uniform(key, (batch, num_patches))
    ids_shuffle = jnp.argsort(noise, axis=1).astype(jnp.int32)
    ids_restore = jnp.argsort(ids_shuffle, axis=1).astype(jnp.int32)
    ids_keep = ids_shuffle[:, :len_keep]
    # Position j of the shuffled order is masked iff j >= len_keep; ids_restore maps patch -> shuffled
    # position.
    mask = (ids_restore >= len_keep).astype(jnp.float32)
    return ids_keep, mask, ids_restore


def patchify(images: Float[Array, "b h w c"], patch: int) -> Float[Array, "b n ppc"]:
    """[b, h, w, c] -> [b, (h/p)(w/p), p*p*c]: patches in row-major order, each flattened as (p, p, c).

    This is MAE's ``patchify`` (``nchpwq -> nhwpqc``) for channels-last input; it defines the target layout
    ``sslmethods.blocks.losses.mae_loss`` expects from the decoder."""
    if images.ndim != 4:
        raise ValueError(f"images has shape {images.shape}; expected [b, h, w, c]")
    b, h, w, c = images.shape
    if patch <= 0 or h % patch or w % patch:
        raise ValueError(f"images spatial size {(h, w)} is not divisible by patch={patch}")
    x = images.reshape(b, h // patch, patch, w // patch, patch, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, (h // patch) * (w // patch), patch * patch * c)


def unpatchify(
    patches: Float[Array, "b n ppc"], patch: int, image_size: tuple[int, int]
) -> Float[Array, "b h w c"]:
    """Inverse of `patchify` for images of `image_size` = (h, w)."""
    b, n, ppc = patches.shape
    h, w = image_size
    if h % patch or w % patch or n != (h // patch) * (w // patch) or ppc % (patch * patch):
        raise ValueError(
            f"patches of shape {patches.shape} do not tile image_size={image_size} with patch={patch}"
        )
    c = ppc // (patch * patch)
    x = patches.reshape(b, h // patch, w // patch, patch, patch, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)
