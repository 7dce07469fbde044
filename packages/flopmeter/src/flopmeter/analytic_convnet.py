"""Closed-form multiply-accumulate (MAC) counts for convolutional networks, from integer dimensions.

Convolutions count every kernel tap of every output position (``out_h * out_w * k * k * c_in / groups *
c_out``), also taps that fall on "SAME" padding: DeepMind's ``count_flops`` for NFNets does the same, which is
why these land about 1% above XLA's count of the compiled program (XLA skips the padded taps). Linear layers
(squeeze-excite, the classifier) count in * out; activations, pooling and weight standardisation are left out.
FLOPs = 2 * MACs. NFNet-F0 at 256 px with 1000 classes: 12.38e9 MACs, the NFNet paper's Table 3 figure.
"""

import math

from flopmeter.analytic import _nonnegative_int, _positive

__all__ = ["conv2d_macs", "nfnet_forward_macs", "nfnet_train_macs"]


def conv2d_macs(
    *, out_height: int, out_width: int, kernel: int, in_channels: int, out_channels: int, groups: int = 1
) -> int:
    """MACs of one 2-D convolution producing an ``out_height x out_width`` map (every tap counted)."""
    _positive(out_height=out_height, out_width=out_width, kernel=kernel, in_channels=in_channels,
              out_channels=out_channels, groups=groups)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups={groups} does not divide in_channels={in_channels} and out_channels={out_channels}")
    return out_height * out_width * kernel * kernel * (in_channels // groups) * out_channels


def _stem_first_conv(image_size: tuple[int, int], in_channels: int, out_channels: int) -> int:
    h, w = (math.ceil(s / 2) for s in image_size)
    return conv2d_macs(out_height=h, out_width=w, kernel=3, in_channels=in_channels, out_channels=out_channels)


def nfnet_forward_macs(
    *,
    image_size: int | tuple[int, int],
    widths: tuple[int, ...],
    depths: tuple[int, ...],
    stem_widths: tuple[int, ...] = (16, 32, 64),
    group_size: int = 128,
    bottleneck_ratio: float = 0.5,
    se_ratio: float = 0.5,
    final_conv_mult: int = 2,
    in_channels: int = 3,
    num_classes: int = 0,
) -> int:
    """MACs of one image through an NFNet (DeepMind's layout, as `vitcore.NFNet`): the four 3x3 stem convs
    (strides 2, 1, 1, 2; the last with ``widths[0] // 2`` outputs), per block 1x1 -> grouped 3x3 (stride) ->
    grouped 3x3 -> 1x1, the 1x1 shortcut of transition blocks (after the 2x2 average pool), squeeze-excite, the
    final 1x1 conv to ``final_conv_mult * widths[-1]`` and a ``num_classes`` classifier."""
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    _positive(image_height=height, image_width=width, group_size=group_size, bottleneck_ratio=bottleneck_ratio,
              se_ratio=se_ratio, final_conv_mult=final_conv_mult)
    _nonnegative_int(num_classes=num_classes)
    if len(widths) != len(depths):
        raise ValueError(f"widths={widths!r} and depths={depths!r}: expected one width per stage")
    macs = 0
    channels, h, w = in_channels, height, width
    for out, stride in zip((*stem_widths, widths[0] // 2), (2, 1, 1, 2), strict=True):
        h, w = math.ceil(h / stride), math.ceil(w / stride)
        macs += conv2d_macs(out_height=h, out_width=w, kernel=3, in_channels=channels, out_channels=out)
        channels = out
    for stage, (depth, out) in enumerate(zip(depths, widths, strict=True)):
        mid = int(out * bottleneck_ratio) // group_size * group_size
        groups = mid // group_size
        for i in range(depth):
            stride = 2 if stage > 0 and i == 0 else 1
            in_h, in_w = h, w
            h, w = math.ceil(h / stride), math.ceil(w / stride)
            macs += conv2d_macs(out_height=in_h, out_width=in_w, kernel=1, in_channels=channels, out_channels=mid)
            macs += conv2d_macs(out_height=h, out_width=w, kernel=3, in_channels=mid, out_channels=mid,
                                groups=groups)
            macs += conv2d_macs(out_height=h, out_width=w, kernel=3, in_channels=mid, out_channels=mid,
                                groups=groups)
            macs += conv2d_macs(out_height=h, out_width=w, kernel=1, in_channels=mid, out_channels=out)
            if stride > 1 or channels != out:
                macs += conv2d_macs(out_height=h, out_width=w, kernel=1, in_channels=channels, out_channels=out)
            macs += 2 * out * max(1, int(out * se_ratio))
            channels = out
    features = final_conv_mult * widths[-1]
    macs += conv2d_macs(out_height=h, out_width=w, kernel=1, in_channels=channels, out_channels=features)
    return macs + features * num_classes


def nfnet_train_macs(**nfnet_kwargs) -> int:
    """MACs of forward + backward for one image: every conv and linear costs two more (input and weight
    gradients), except the first stem conv, whose input gradient (with respect to the images) is never needed:
    3 * forward - first conv. Takes the keyword arguments of `nfnet_forward_macs`."""
    forward = nfnet_forward_macs(**nfnet_kwargs)
    size = nfnet_kwargs["image_size"]
    first = _stem_first_conv((size, size) if isinstance(size, int) else size, nfnet_kwargs.get("in_channels", 3),
                             nfnet_kwargs.get("stem_widths", (16, 32, 64))[0])
    return 3 * forward - first
