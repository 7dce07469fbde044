"""Input normalisation: every backbone maps its [0, 1] pixels to ``(pixels - mean) / std`` per channel itself.

Images stay float32 NHWC in [0, 1] in every pipeline; the mean/std live in the backbone's config (``mean``,
``std``), so pre-training, the kNN monitor, fine-tuning and imported timm weights all normalise the same way by
construction, and a run directory's ``encoder.json`` records what its encoder was trained on. The default is
ImageNet's (the study, appendix A.3: "standard ImageNet image normalization for both pre-training and
finetuning", torchvision's values). An ``encoder.json`` written before backbones normalised has no mean/std and
loads as mean 0 / std 1 (those runs saw raw [0, 1] pixels; `vitcore.load_pretrained`).
"""

from collections.abc import Sequence

import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "check_mean_std", "normalise_images"]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


def check_mean_std(owner: str, mean: Sequence[float], std: Sequence[float], in_channels: int) -> None:
    """ValueError naming ``{owner}.mean`` / ``{owner}.std`` unless both are tuples of ``in_channels`` finite
    numbers and every std is > 0."""
    for name, values in (("mean", mean), ("std", std)):
        ok = isinstance(values, tuple) and len(values) == in_channels
        ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) and abs(v) < float("inf")
                        for v in values)
        if not ok:
            raise ValueError(
                f"{owner}.{name}={values!r}; expected a tuple of numbers, one per input channel "
                f"(in_channels={in_channels}), e.g. ImageNet's mean {IMAGENET_MEAN} / std {IMAGENET_STD}"
            )
    if not all(s > 0 for s in std):
        raise ValueError(f"{owner}.std={std!r}; expected every value > 0")


def normalise_images(
    images: Float[Array, "*batch c"], mean: Sequence[float], std: Sequence[float]
) -> Float[Array, "*batch c"]:
    """``(images - mean) / std`` over the last (channel) axis, in float32 whatever the input dtype (backbones call
    it before casting activations to their compute dtype)."""
    x = jnp.asarray(images, jnp.float32)
    return (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)
