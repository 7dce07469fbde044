"""`NFNetConfig`: the frozen description of one Normalizer-Free Network (Brock et al. 2021, NFNet-F*)."""

import dataclasses

from .backbone import FeatureInfo
from .config import compute_dtype_of, image_hw
from .normalisation import IMAGENET_MEAN, IMAGENET_STD, check_mean_std

# DeepMind's `nonlinearities` magic constants (deepmind-research nfnets/base.py): gamma = 1 / std(g(x)) for
# x ~ N(0, 1), so gamma * g(x) has unit variance (its mean is removed by the zero-mean standardised weights that
# follow). `jax.nn.gelu` there is the tanh approximation (JAX's default).
ACTIVATION_GAMMAS: dict[str, float] = {
    "gelu": 1.7015043497085571,
    "relu": 1.7139588594436646,
    "silu": 1.7881293296813965,
}
# Every NFNet downsamples 32x (stem 4x, three stride-2 stages).
NFNET_STRIDE = 32


@dataclasses.dataclass(frozen=True)
class NFNetConfig:
    """Everything that fixes an NFNet's architecture and numerics (not its weights); defaults are NFNet-F0.

    widths/depths: per-stage output channels and block counts (DM's F0: (256, 512, 1536, 1536) x (1, 2, 6, 3)).
    stem_widths: the first three 3x3 stem convs; the fourth has widths[0] // 2 outputs (DM: 16, 32, 64, 128).
    group_size: channels per group of the 3x3 convs; bottleneck_ratio: block width = out * ratio rounded down
    to a multiple of group_size. se_ratio: squeeze-excite hidden = out * ratio. alpha: residual branch scale.
    final_conv_mult: the 1x1 final conv has final_conv_mult * widths[-1] outputs (3072 for F0).
    drop_path: stochastic-depth rate scale; block i of N drops its residual branch with rate drop_path * i / N
    (DM's `stochdepth_rate`, DM default 0.1; no rescaling of kept branches, as DM). dropout: before the head.
    image_size: the nominal input size (batches built from the config use it); any multiple of 32 is accepted.
    Parameters are float32; `compute_dtype` is the dtype of activations and convolutions, weight
    standardisation and pooling run in float32. `mean`/`std` (one number per input channel; ImageNet's by
    default) normalise the [0, 1] input pixels inside the model (`vitcore.normalisation`).
    """

    image_size: int | tuple[int, int] = 224
    widths: tuple[int, ...] = (256, 512, 1536, 1536)
    depths: tuple[int, ...] = (1, 2, 6, 3)
    stem_widths: tuple[int, ...] = (16, 32, 64)
    group_size: int = 128
    bottleneck_ratio: float = 0.5
    se_ratio: float = 0.5
    alpha: float = 0.2
    final_conv_mult: int = 2
    activation: str = "gelu"  # "gelu" | "relu" | "silu"
    in_channels: int = 3
    num_classes: int = 0
    drop_path: float = 0.0
    dropout: float = 0.0
    head_init_std: float = 0.01
    compute_dtype: str = "float32"  # "float32" | "bfloat16"
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __post_init__(self):
        h, w = image_hw(self.image_size)
        if h < 1 or w < 1 or h % NFNET_STRIDE or w % NFNET_STRIDE:
            raise ValueError(f"NFNetConfig.image_size={self.image_size!r}; expected multiples of {NFNET_STRIDE}")
        for name, length in (("widths", 4), ("depths", 4), ("stem_widths", 3)):
            value = getattr(self, name)
            if (
                not isinstance(value, tuple)
                or len(value) != length
                or not all(isinstance(v, int) and v >= 1 for v in value)
            ):
                raise ValueError(f"NFNetConfig.{name}={value!r}; expected a tuple of {length} positive ints")
        for name in ("group_size", "final_conv_mult", "in_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"NFNetConfig.{name}={value!r}; expected a positive int")
        if self.widths[0] % 2:
            raise ValueError(f"NFNetConfig.widths={self.widths!r}; widths[0] must be even (stem = widths[0] // 2)")
        for i, width in enumerate(self.block_widths):
            if width < self.group_size:
                raise ValueError(
                    f"NFNetConfig.group_size={self.group_size} exceeds stage {i}'s block width "
                    f"{int(self.widths[i] * self.bottleneck_ratio)} (widths[{i}] * bottleneck_ratio); "
                    "lower group_size or raise the width"
                )
        for name in ("bottleneck_ratio", "se_ratio", "alpha"):
            if not getattr(self, name) > 0:
                raise ValueError(f"NFNetConfig.{name}={getattr(self, name)!r}; expected > 0")
        if self.activation not in ACTIVATION_GAMMAS:
            raise ValueError(f"NFNetConfig.activation={self.activation!r}; expected one of {sorted(ACTIVATION_GAMMAS)}")
        if not 0.0 <= self.drop_path < 1.0:
            raise ValueError(f"NFNetConfig.drop_path={self.drop_path!r}; expected 0 <= drop_path < 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"NFNetConfig.dropout={self.dropout!r}; expected 0 <= dropout < 1")
        if not isinstance(self.num_classes, int) or self.num_classes < 0:
            raise ValueError(f"NFNetConfig.num_classes={self.num_classes!r}; expected an int >= 0")
        compute_dtype_of(self.compute_dtype)
        check_mean_std("NFNetConfig", self.mean, self.std, self.in_channels)

    @property
    def block_widths(self) -> tuple[int, ...]:
        """Per stage: the bottleneck width, out * bottleneck_ratio rounded down to whole groups (DM `NFBlock`)."""
        return tuple(int(w * self.bottleneck_ratio) // self.group_size * self.group_size for w in self.widths)

    @property
    def betas(self) -> tuple[tuple[float, ...], ...]:
        """Per stage and block: beta = 1 / expected std of the block's input. The expected variance grows by
        alpha**2 per block and is reset to 1 + alpha**2 after each stage's first (transition) block."""
        out, variance = [], 1.0
        for depth in self.depths:
            stage = []
            for i in range(depth):
                stage.append(variance**-0.5)
                variance = (1.0 if i == 0 else variance) + self.alpha**2
            out.append(tuple(stage))
        return tuple(out)

    @property
    def drop_path_rates(self) -> tuple[tuple[float, ...], ...]:
        """Per stage and block: drop_path * (global block index) / (number of blocks), as DM."""
        total, index, out = sum(self.depths), 0, []
        for depth in self.depths:
            out.append(tuple(self.drop_path * (index + i) / total for i in range(depth)))
            index += depth
        return tuple(out)

    @property
    def gamma(self) -> float:
        return ACTIVATION_GAMMAS[self.activation]

    @property
    def feature_info(self) -> tuple[FeatureInfo, ...]:
        """One entry per stage (`intermediates` index 0..3): stage width at stride 4, 8, 16, 32."""
        return tuple(FeatureInfo(f"stages.{i}", w, 4 * 2**i) for i, w in enumerate(self.widths))

    @property
    def num_features(self) -> int:
        """Channels of the final conv (= pooled features): final_conv_mult * widths[-1]."""
        return self.final_conv_mult * self.widths[-1]

    @property
    def output_stride(self) -> int:
        return NFNET_STRIDE
