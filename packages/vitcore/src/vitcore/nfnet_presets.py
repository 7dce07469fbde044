"""NFNet presets: name -> frozen `NFNetConfig` (DeepMind's F0-F7 and F0+-F7+, plus tiny test/demo sizes).

Depths are (1, 2, 6, 3) x (k + 1) for F<k>; widths (256, 512, 1536, 1536), or (384, 768, 2048, 2048) for
DeepMind's wider "F<k>+" variants (deepmind-research nfnets/base.py `nfnet_params`; names here `nfnet-f<k>plus`).
All presets are set at 224 px, the study's resolution (DeepMind trains F0..F7 at 192, 224, 256, 320, 384,
416, 448, 480 and tests at 256..608; pass `image_size=` to change it). Regularisation (DM: dropout 0.2-0.5 by
variant, stochastic depth 0.1) is off in the presets, as in the ViT presets; set `dropout=` / `drop_path=`.

| name             | depths          | widths                  | params (num_classes=1000)    |
|------------------|-----------------|-------------------------|------------------------------|
| nfnet-f0         | 1, 2, 6, 3      | 256, 512, 1536, 1536    | 71,489,284 (timm dm_nfnet_f0)|
| nfnet-f1         | 2, 4, 12, 6     | same                    | 132,634,256                  |
| nfnet-f2         | 3, 6, 18, 9     | same                    | 193,779,228                  |
| nfnet-f3         | 4, 8, 24, 12    | same                    | 254,924,200                  |
| nfnet-f4 .. f7   | k * (1, 2, 6, 3)| same                    | see the vitcore README       |
| nfnet-f0plus ..  | as f0 .. f7     | 384, 768, 2048, 2048    | see the vitcore README       |
| nfnet-test       | 1, 1, 1, 1      | 32, 64, 128, 128        | unit tests (32 px)           |
| nfnet-demo       | 1, 1, 2, 1      | 64, 128, 256, 256       | CPU demo runs (64 px)        |
"""

from .nfnet_config import NFNetConfig

_BASE_DEPTHS = (1, 2, 6, 3)
_WIDTHS = (256, 512, 1536, 1536)
_PLUS_WIDTHS = (384, 768, 2048, 2048)


def _depths(variant: int) -> tuple[int, ...]:
    return tuple((variant + 1) * d for d in _BASE_DEPTHS)


NFNET_PRESETS: dict[str, NFNetConfig] = {
    **{f"nfnet-f{k}": NFNetConfig(widths=_WIDTHS, depths=_depths(k)) for k in range(8)},
    **{f"nfnet-f{k}plus": NFNetConfig(widths=_PLUS_WIDTHS, depths=_depths(k)) for k in range(8)},
    # Tiny sizes keep DM's proportions: stem widths[0] / (16, 8, 4) then widths[0] / 2; two groups per 3x3 conv
    # of the middle stages.
    "nfnet-test": NFNetConfig(
        image_size=32, widths=(32, 64, 128, 128), depths=(1, 1, 1, 1), stem_widths=(2, 4, 8), group_size=16
    ),
    "nfnet-demo": NFNetConfig(
        image_size=64, widths=(64, 128, 256, 256), depths=(1, 1, 2, 1), stem_widths=(4, 8, 16), group_size=32
    ),
}
