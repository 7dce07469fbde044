"""Closed-form multiply-accumulate (MAC) counts for ViT-style transformers, from integer dimensions.

Only matrix products are counted (patch embedding, q/k/v/output projections, the two attention products, the
MLP, heads); norms, softmax, GELU and residual adds are left out, which is why XLA's measured figure lands a
few percent above these. FLOPs = 2 * MACs (XLA's convention). Standard ViT-B/16 at 224 with a class token:
`vit_forward_macs(image_size=224, patch_size=16, width=768, depth=12)` = 17.56e9 MACs. The package stays
generic: nothing here imports a model library.
"""

import math


def _positive(**values: object) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"{name}={value!r} is invalid; expected a positive number")


def _nonnegative_int(**values: object) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name}={value!r} is invalid; expected a non-negative integer")


def transformer_block_macs(*, tokens: int, width: int, mlp_ratio: float | int = 4.0) -> int:
    """MACs of one pre-norm transformer block on `tokens` tokens of size `width`.

    q/k/v projections 3*n*d^2, attention scores and weighted sum 2*n^2*d (independent of the number of heads),
    output projection n*d^2, MLP 2*n*d*(mlp_ratio*d).
    """
    _positive(tokens=tokens, width=width, mlp_ratio=mlp_ratio)
    hidden = int(round(width * mlp_ratio))
    return 4 * tokens * width * width + 2 * tokens * tokens * width + 2 * tokens * width * hidden


def num_patches(*, image_size: int | tuple[int, int], patch_size: int) -> int:
    """Number of non-overlapping patches; the image side must be a multiple of the patch size."""
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    _positive(image_height=height, image_width=width, patch_size=patch_size)
    if height % patch_size or width % patch_size:
        raise ValueError(f"image_size={image_size!r} is not a multiple of patch_size={patch_size}")
    return (height // patch_size) * (width // patch_size)


def patch_embed_macs(*, patches: int, patch_size: int, width: int, in_channels: int = 3) -> int:
    """MACs of the linear patch embedding (a stride-p convolution) applied to `patches` patches."""
    _positive(patches=patches, patch_size=patch_size, width=width, in_channels=in_channels)
    return patches * patch_size * patch_size * in_channels * width


def vit_forward_macs(
    *,
    image_size: int | tuple[int, int],
    patch_size: int,
    width: int,
    depth: int,
    mlp_ratio: float | int = 4.0,
    in_channels: int = 3,
    num_prefix_tokens: int = 1,
    num_classes: int = 0,
    kept_patches: int | None = None,
) -> int:
    """MACs of one image through a ViT: patch embedding, `depth` blocks, a head when `num_classes > 0`.

    `kept_patches` runs the encoder on that many patch tokens only (MAE encoder); the patch embedding is still
    computed for every patch, as in the reference MAE (embed first, then drop).
    """
    _nonnegative_int(depth=depth, num_prefix_tokens=num_prefix_tokens, num_classes=num_classes)
    patches = num_patches(image_size=image_size, patch_size=patch_size)
    kept = patches if kept_patches is None else kept_patches
    if not 0 < kept <= patches:
        raise ValueError(f"kept_patches={kept_patches!r} is invalid; expected 1..{patches}")
    tokens = kept + num_prefix_tokens
    embed = patch_embed_macs(patches=patches, patch_size=patch_size, width=width, in_channels=in_channels)
    blocks = depth * transformer_block_macs(tokens=tokens, width=width, mlp_ratio=mlp_ratio)
    return embed + blocks + width * num_classes


def vit_train_macs(**vit_kwargs) -> int:
    """MACs of forward + backward for one image (no optimizer, which is O(params) and not a matmul).

    The backward of every matmul costs two matmuls (input gradient and weight gradient), except the patch
    embedding, whose input gradient (with respect to the images) is never needed:
    3 * forward - patch embedding.
    Takes the same keyword arguments as `vit_forward_macs`.
    """
    forward = vit_forward_macs(**vit_kwargs)
    patches = num_patches(image_size=vit_kwargs["image_size"], patch_size=vit_kwargs["patch_size"])
    embed = patch_embed_macs(
        patches=patches,
        patch_size=vit_kwargs["patch_size"],
        width=vit_kwargs["width"],
        in_channels=vit_kwargs.get("in_channels", 3),
    )
    return 3 * forward - embed


def mae_kept_patches(*, patches: int, mask_ratio: float | int) -> int:
    """Patches the MAE encoder sees: `int(patches * (1 - mask_ratio))`, as in facebookresearch/mae."""
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio={mask_ratio!r} is invalid; expected a value in [0, 1)")
    return int(patches * (1.0 - mask_ratio))


def mae_forward_macs(
    *,
    image_size: int | tuple[int, int],
    patch_size: int,
    width: int,
    depth: int,
    mask_ratio: float | int = 0.75,
    decoder_width: int = 512,
    decoder_depth: int = 8,
    mlp_ratio: float | int = 4.0,
    in_channels: int = 3,
) -> dict[str, int]:
    """MAE forward MACs split into `encoder`, `decoder` and `total` (facebookresearch/mae layout).

    Encoder: a ViT on the kept patches plus the class token. Decoder: a linear map of the kept tokens (with
    class token) to the decoder width, `decoder_depth` blocks on all patches plus the class token, and the
    pixel predictor (p*p*c outputs) on those same tokens.
    """
    _nonnegative_int(decoder_depth=decoder_depth)
    _positive(decoder_width=decoder_width)
    patches = num_patches(image_size=image_size, patch_size=patch_size)
    kept = mae_kept_patches(patches=patches, mask_ratio=mask_ratio)
    encoder = vit_forward_macs(
        image_size=image_size,
        patch_size=patch_size,
        width=width,
        depth=depth,
        mlp_ratio=mlp_ratio,
        in_channels=in_channels,
        kept_patches=kept,
    )
    all_tokens = patches + 1
    decoder = (
        (kept + 1) * width * decoder_width
        + decoder_depth * transformer_block_macs(tokens=all_tokens, width=decoder_width, mlp_ratio=mlp_ratio)
        + all_tokens * decoder_width * patch_size * patch_size * in_channels
    )
    return {"encoder": encoder, "decoder": decoder, "total": encoder + decoder}


def text_encoder_macs(
    *, seq_len: int, width: int, depth: int, mlp_ratio: float | int = 4.0, output_dim: int = 0
) -> int:
    """MACs of a transformer text encoder on one sequence: `depth` blocks and an optional output projection.

    The token embedding is a table lookup (no MACs). `output_dim > 0` adds the pooled-feature projection.
    """
    _nonnegative_int(depth=depth, output_dim=output_dim)
    return (
        depth * transformer_block_macs(tokens=seq_len, width=width, mlp_ratio=mlp_ratio) + width * output_dim
    )


def macs_to_flops(macs: float | int) -> float:
    """XLA's convention: one multiply-add is 2 FLOPs."""
    if not math.isfinite(macs) or macs < 0:
        raise ValueError(f"macs={macs!r} is invalid; expected a finite non-negative number")
    return 2.0 * macs
