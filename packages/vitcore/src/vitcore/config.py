"""`ViTConfig`: the frozen description of one Vision Transformer."""

import dataclasses

import jax.numpy as jnp

from .backbone import FeatureInfo
from .normalisation import IMAGENET_MEAN, IMAGENET_STD, check_mean_std

_POOLS = ("cls", "mean")
_POS_EMBEDS = ("learned", "sincos")
_INITS = ("trunc_normal", "xavier")
_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype_of(name: str) -> jnp.dtype:
    """The jnp dtype for a `compute_dtype` name ("float32" or "bfloat16")."""
    if name not in _DTYPES:
        raise ValueError(f"compute_dtype={name!r}; expected one of {sorted(_DTYPES)}")
    return jnp.dtype(_DTYPES[name])


def image_hw(image_size: int | tuple[int, int]) -> tuple[int, int]:
    """`image_size` as (height, width)."""
    if isinstance(image_size, int):
        return image_size, image_size
    return int(image_size[0]), int(image_size[1])


@dataclasses.dataclass(frozen=True)
class ViTConfig:
    """Everything that fixes a ViT's architecture and numerics (not its weights).

    Parameters are always float32; `compute_dtype` is the dtype of activations and matmuls ("bfloat16" for
    mixed precision). LayerNorm and softmax always run in float32. `drop_path` is the rate of the last block
    (rates grow linearly from 0, as in timm). `head_bias_init` is the classifier bias at initialisation (-10
    in the study's supervised recipe). `init="xavier"` is MAE's initialisation (xavier-uniform matmuls,
    normal(0.02) tokens). String options are plain `str` (validated here, with a message listing the valid
    values) rather than `Literal`, so a typo gets that message rather than a type-checker dump.
    `mean`/`std` (one number per input channel; ImageNet's by default) normalise the [0, 1] input pixels inside
    the model (`vitcore.normalisation`).
    """

    image_size: int | tuple[int, int]
    patch_size: int
    width: int
    depth: int
    num_heads: int
    in_channels: int = 3
    mlp_ratio: float = 4.0
    class_token: bool = True
    pool: str = "cls"  # "cls" | "mean"
    pos_embed: str = "learned"  # "learned" | "sincos"
    qkv_bias: bool = True
    drop_path: float = 0.0
    dropout: float = 0.0
    num_classes: int = 0
    head_bias_init: float = 0.0
    init: str = "trunc_normal"  # "trunc_normal" | "xavier"
    compute_dtype: str = "float32"  # "float32" | "bfloat16"
    layer_norm_eps: float = 1e-6
    scan_layers: bool = False
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __post_init__(self):
        h, w = image_hw(self.image_size)
        for name in ("patch_size", "width", "depth", "num_heads", "in_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"ViTConfig.{name}={value!r}; expected a positive int")
        if h % self.patch_size or w % self.patch_size or h < 1 or w < 1:
            raise ValueError(
                f"ViTConfig.image_size={self.image_size!r} is not divisible by patch_size={self.patch_size}; "
                "pick an image size that is a multiple of the patch size"
            )
        if self.width % self.num_heads:
            raise ValueError(f"ViTConfig.width={self.width} is not divisible by num_heads={self.num_heads}")
        if self.pool not in _POOLS:
            raise ValueError(f"ViTConfig.pool={self.pool!r}; expected one of {_POOLS}")
        if self.pool == "cls" and not self.class_token:
            raise ValueError(
                "ViTConfig.pool='cls' needs class_token=True; use pool='mean' without a class token"
            )
        if self.pos_embed not in _POS_EMBEDS:
            raise ValueError(f"ViTConfig.pos_embed={self.pos_embed!r}; expected one of {_POS_EMBEDS}")
        if self.init not in _INITS:
            raise ValueError(f"ViTConfig.init={self.init!r}; expected one of {_INITS}")
        if self.pos_embed == "sincos" and self.width % 4:
            raise ValueError(f"ViTConfig.width={self.width} must be a multiple of 4 for pos_embed='sincos'")
        if not 0.0 <= self.drop_path < 1.0:
            raise ValueError(f"ViTConfig.drop_path={self.drop_path!r}; expected 0 <= drop_path < 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ViTConfig.dropout={self.dropout!r}; expected 0 <= dropout < 1")
        if not isinstance(self.num_classes, int) or self.num_classes < 0:
            raise ValueError(f"ViTConfig.num_classes={self.num_classes!r}; expected an int >= 0")
        if self.mlp_ratio <= 0:
            raise ValueError(f"ViTConfig.mlp_ratio={self.mlp_ratio!r}; expected > 0")
        compute_dtype_of(self.compute_dtype)
        check_mean_std("ViTConfig", self.mean, self.std, self.in_channels)

    @property
    def grid_size(self) -> tuple[int, int]:
        """Patch grid (gh, gw)."""
        h, w = image_hw(self.image_size)
        return h // self.patch_size, w // self.patch_size

    @property
    def num_patches(self) -> int:
        gh, gw = self.grid_size
        return gh * gw

    @property
    def num_prefix_tokens(self) -> int:
        return 1 if self.class_token else 0

    @property
    def mlp_width(self) -> int:
        return int(self.width * self.mlp_ratio)

    @property
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        """One entry per block (`intermediates` index): `width` channels at stride `patch_size`."""
        return tuple(FeatureInfo(f"blocks.{i}", self.width, self.patch_size) for i in range(self.depth))

    @property
    def num_features(self) -> int:
        return self.width

    @property
    def output_stride(self) -> int:
        return self.patch_size
