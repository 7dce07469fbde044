"""Write packages/vitcore/tests/fixtures/timm_vit_tiny.npz: a small timm ViT's weights, inputs and outputs.

Not run by the tests (timm/torch are not test dependencies). Regenerate with any venv holding the CPU build of
torch and timm (the shared development venv has both): ``python tools/make_timm_fixture.py``.

The model is timm's own `VisionTransformer` (img 32, patch 8, width 32, depth 2, heads 2, 10 classes) with
every
parameter redrawn at random (biases and LayerNorm affines included, so a mis-mapped key cannot go unnoticed).
The
npz holds the state dict under "param/<timm key>", the [0, 1] NHWC pixels as "images" (uint8 / 255), timm's
input normalisation as "mean" / "std" (`resolve_data_config`), and timm's eval-mode logits ("logits") and
`forward_features` ("tokens") on timm's own eval preprocessing of the same 8-bit images (`create_transform`).
"""

import argparse
import sys
import types
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "packages/vitcore/tests/fixtures/timm_vit_tiny.npz"


def _import_timm():
    # PyPI's torchvision wheel is built against CUDA torch; with the CPU torch its compiled ops fail to load
    # and
    # importing torchvision dies while registering them. timm's ViT needs none of those ops, so skip the two
    # registration modules when (and only when) the extension cannot load.
    import torch

    try:
        import torchvision  # noqa: F401
    except RuntimeError:
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        for name in ("torchvision._meta_registrations", "torchvision._autograd_registrations"):
            sys.modules[name] = types.ModuleType(name)
    import timm
    import timm.data
    from timm.models.vision_transformer import VisionTransformer

    return torch, timm, VisionTransformer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch, timm, VisionTransformer = _import_timm()
    torch.manual_seed(args.seed)
    model = VisionTransformer(
        img_size=32,
        patch_size=8,
        in_chans=3,
        num_classes=10,
        embed_dim=32,
        depth=2,
        num_heads=2,
        mlp_ratio=4.0,
        qkv_bias=True,
    )
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name == "norm.weight":
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                fan_in = p[0].numel() if p.ndim > 1 and name not in ("cls_token", "pos_embed") else 1
                p.copy_(torch.randn_like(p) / max(fan_in, 1) ** 0.5 * (0.5 if fan_in == 1 else 1.0))
    model.eval()
    pixels = np.random.default_rng(args.seed + 1).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    data_config = timm.data.resolve_data_config({"input_size": (3, 32, 32), "crop_pct": 1.0}, model=model)
    transform = timm.data.create_transform(**data_config)  # resize + centre crop (identities here), normalise
    images = torch.stack([transform(Image.fromarray(p)) for p in pixels])
    with torch.no_grad():
        logits = model(images)
        tokens = model.forward_features(images)
    arrays = {f"param/{k}": v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    arrays["images"] = pixels.astype(np.float32) / np.float32(255.0)
    arrays["mean"], arrays["std"] = np.asarray(data_config["mean"]), np.asarray(data_config["std"])
    arrays["logits"] = logits.numpy().astype(np.float32)
    arrays["tokens"] = tokens.numpy().astype(np.float32)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    print(
        f"wrote {args.out} ({args.out.stat().st_size} bytes, "
        f"timm {timm.__version__}, torch {torch.__version__})"
    )


if __name__ == "__main__":
    main()
