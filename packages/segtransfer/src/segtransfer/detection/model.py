"""`MaskRCNN`: a plain backbone + simple feature pyramid + RPN + box and mask heads, and how to build one.

The encoder is read only through its backbone face (`vitcore.AbstractBackbone`): ``patch_tokens`` [b, H/s, W/s, d]
for the features, ``output_stride`` (s) and ``num_features`` (d) for the sizes, ``with_image_size`` to adapt it to
the detector's input: the plain, unwindowed ViT of the study (s = its patch size), or an NFNet (s = 32, its final
map: the pyramid's levels then sit at strides 8..128 instead of 4..64). Images enter as [0, 1] pixels
(`segtransfer.detection.data`); the encoder normalises them with its own mean/std.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.random as jr
import numpy as np
import vitcore
from jaxtyping import Array, Float, PRNGKeyArray

from .anchors import pyramid_anchors
from .box_head import BoxHead
from .config import DetectorConfig
from .feature_pyramid import SimpleFeaturePyramid
from .mask_head import MaskHead
from .rpn import RPNHead

__all__ = ["MaskRCNN", "create_detector", "detector_from_scratch", "with_drop_path"]


class MaskRCNN(eqx.Module):
    """The detector's parameters and its shared forward pieces; training and inference compose them
    (`detection_loss`, `detect`)."""

    encoder: vitcore.AbstractBackbone
    pyramid: SimpleFeaturePyramid
    rpn_head: RPNHead
    box_head: BoxHead
    mask_head: MaskHead
    config: DetectorConfig = eqx.field(static=True)

    @property
    def strides(self) -> tuple[int, ...]:
        """Strides of all pyramid levels (the ROI levels, then the top level)."""
        return self.pyramid.strides(self.encoder.output_stride)

    @property
    def roi_strides(self) -> tuple[int, ...]:
        """Strides of the levels the ROI heads pool from (all but the top, as detectron2's p2..p5)."""
        return self.strides[:-1]

    def grids(self) -> tuple[tuple[int, int], ...]:
        """Feature-map sizes of all pyramid levels for the configured input size."""
        grid = self.config.image_size // self.encoder.output_stride
        sizes = []
        for s in self.pyramid.scale_factors:
            g = int(grid * s)
            sizes.append((g, g))
        top = (sizes[-1][0] + 1) // 2
        return (*sizes, (top, top))

    def anchors(self) -> tuple[np.ndarray, tuple[int, ...]]:
        """All anchors (numpy float32 [n, 4]) and the count per level; constants of the configuration."""
        c = self.config
        return pyramid_anchors(self.grids(), self.strides, c.anchor_sizes, c.aspect_ratios)

    def features(
        self, images: Float[Array, "b h w 3"], *, key: PRNGKeyArray | None = None, inference: bool = True
    ) -> tuple[Float[Array, "b _ _ c"], ...]:
        """Pyramid levels (largest first, the top level last) of an NHWC batch of [0, 1] pixels."""
        tokens = self.encoder(images, key=key, inference=inference).patch_tokens
        return self.pyramid(tokens)


def with_drop_path(encoder: vitcore.AbstractBackbone, rate: float) -> vitcore.AbstractBackbone:
    """The same encoder (same weights) with stochastic depth ``rate`` (ViTDet fine-tunes ViT-B with 0.1 whatever
    the pre-training used; an NFNet's ``drop_path`` is its last block's rate). Drop path holds no parameters, so
    only the static config changes."""
    if rate == encoder.config.drop_path:
        return encoder
    config = dataclasses.replace(encoder.config, drop_path=rate)  # validates the rate
    # The config is a static field: rebuild the tree with the new config's structure around the same leaves.
    structure = jax.tree.structure(eqx.filter_eval_shape(type(encoder), config, key=jr.key(0)))
    return jax.tree.unflatten(structure, jax.tree.leaves(encoder))


def create_detector(
    encoder: vitcore.AbstractBackbone, config: DetectorConfig, *, key: PRNGKeyArray, drop_path: float | None = None
) -> MaskRCNN:
    """A `MaskRCNN` around an existing encoder (e.g. a pre-trained one); ``key`` initialises the rest.

    A classifier head, if the encoder has one, is dropped (`without_head`). The encoder is adapted to
    ``config.image_size`` when it was built for another size (`with_image_size`: a ViT's position embeddings are
    resampled; an NFNet only records the size). ``drop_path``: the encoder's stochastic depth during fine-tuning
    (None keeps its own; `with_drop_path`).
    """
    if not isinstance(encoder, vitcore.AbstractBackbone):
        raise TypeError(f"encoder={type(encoder).__name__}: expected a vitcore backbone (vitcore.AbstractBackbone)")
    encoder = encoder.without_head()
    if drop_path is not None:
        encoder = with_drop_path(encoder, drop_path)
    stride = encoder.output_stride
    if config.image_size % (2 * stride):
        raise ValueError(
            f"config.image_size={config.image_size}: expected a multiple of 2 x the encoder's stride {stride} (the "
            "0.5 level max-pools the patch grid)"
        )
    encoder = encoder.with_image_size(config.image_size)
    k_fpn, k_rpn, k_box, k_mask = jr.split(key, 4)
    channels = config.pyramid_channels
    roi = config.roi
    return MaskRCNN(
        encoder=encoder,
        pyramid=SimpleFeaturePyramid(
            encoder.num_features, channels=channels, scale_factors=config.scale_factors, key=k_fpn
        ),
        rpn_head=RPNHead(channels, config.num_anchors_per_cell, num_convs=config.rpn.num_convs, key=k_rpn),
        box_head=BoxHead(
            channels, roi.box_pool_size, config.num_classes, conv_channels=roi.conv_channels,
            num_convs=roi.box_convs, fc_dim=roi.fc_dim, key=k_box,
        ),
        mask_head=MaskHead(
            channels, config.num_classes, conv_channels=roi.conv_channels, num_convs=roi.mask_convs, key=k_mask
        ),
        config=config,
    )


def detector_from_scratch(preset: str, config: DetectorConfig, *, key: PRNGKeyArray, **encoder_overrides) -> MaskRCNN:
    """A randomly initialised ``preset`` encoder (the from-scratch baseline) at ``config.image_size`` + heads."""
    k_enc, k_rest = jr.split(key)
    encoder = vitcore.create(preset, key=k_enc, num_classes=0, image_size=config.image_size, **encoder_overrides)
    return create_detector(encoder, config, key=k_rest)
