"""The timm + PyTorch side of the benchmarks: a training step a user would otherwise write, built from timm.

Shared by `vs_timm.py` (CPU, float32, against flopwise's bare step) and `gpu_suite.py` (a GPU, bf16 autocast,
`torch.compile`, against flopwise's engine step). Two steps:

- supervised: timm's `VisionTransformer` (no dropout or drop path), softmax cross-entropy, AdamW;
- MAE: facebookresearch/mae's `models_mae.py` recipe written with timm's blocks: random masking by argsort of
  uniform noise, the encoder on the kept patches, a `decoder_width` x `decoder_depth` decoder of timm `Block`s
  with mask tokens, per-patch normalised pixel loss on the masked patches, AdamW.

`step(...)` returns a zero-argument callable that runs one step and returns the loss tensor (not synchronised),
so callers time consecutive steps and synchronise once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LR, WEIGHT_DECAY = 1e-3, 0.05


def vit(image: int, patch: int, width: int, depth: int, heads: int, mlp_ratio: float, num_classes: int) -> Any:
    """timm's ViT with these dimensions (e.g. 224, 16, 768, 12, 12, 4.0 is `vit_base_patch16_224`)."""
    import timm.models.vision_transformer as tv

    return tv.VisionTransformer(img_size=image, patch_size=patch, embed_dim=width, depth=depth, num_heads=heads,
                                mlp_ratio=mlp_ratio, num_classes=num_classes)


def timm_vit(name: str, image: int, patch: int, num_classes: int) -> Any:
    """A registered timm ViT (`vit_tiny_patch16_224`, ...) at another image or patch size."""
    import timm

    return timm.create_model(name, img_size=image, patch_size=patch, num_classes=num_classes)


def mae_model(encoder: Any, *, mask_ratio: float, decoder_width: int, decoder_depth: int, decoder_heads: int,
              norm_pix_loss: bool) -> Any:
    """MAE (He et al. 2022) around a timm ViT `encoder` (its patch embedding, class token, position embedding,
    blocks and norm; its head is unused): forward(images) returns the loss."""
    import torch
    from timm.models.vision_transformer import Block
    from torch import nn

    class MAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.patch = encoder.patch_embed.patch_size[0]
            width = encoder.embed_dim
            n = encoder.patch_embed.num_patches
            self.keep = int(n * (1 - mask_ratio))
            self.decoder_embed = nn.Linear(width, decoder_width)
            self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_width))
            self.decoder_pos = nn.Parameter(torch.zeros(1, n + 1, decoder_width))
            self.decoder = nn.Sequential(*[Block(decoder_width, decoder_heads, 4.0) for _ in range(decoder_depth)])
            self.decoder_norm = nn.LayerNorm(decoder_width)
            self.decoder_pred = nn.Linear(decoder_width, self.patch * self.patch * 3)

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            e = self.encoder
            x = e.patch_embed(images) + e.pos_embed[:, e.num_prefix_tokens:]
            b, n, d = x.shape
            shuffle = torch.argsort(torch.rand(b, n, device=x.device), dim=1)
            restore = torch.argsort(shuffle, dim=1)
            kept = torch.gather(x, 1, shuffle[:, : self.keep, None].expand(-1, -1, d))
            cls = (e.cls_token + e.pos_embed[:, :1]).expand(b, -1, -1)
            x = e.norm(e.blocks(torch.cat([cls, kept], 1)))
            x = self.decoder_embed(x)
            masked = self.mask_token.expand(b, n - self.keep, -1)
            x_ = torch.gather(torch.cat([x[:, 1:], masked], 1), 1,
                              restore[:, :, None].expand(-1, -1, x.shape[-1]))
            x = torch.cat([x[:, :1], x_], 1) + self.decoder_pos
            pred = self.decoder_pred(self.decoder_norm(self.decoder(x)))[:, 1:]
            p = self.patch
            h = images.shape[2] // p
            target = images.reshape(b, 3, h, p, h, p).permute(0, 2, 4, 3, 5, 1).reshape(b, n, p * p * 3)
            if norm_pix_loss:
                mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
                target = (target - mean) / (var + 1e-6) ** 0.5
            mask = torch.ones(b, n, device=x.device)
            mask[:, : self.keep] = 0
            mask = torch.gather(mask, 1, restore)
            loss = ((pred.float() - target.float()) ** 2).mean(-1)
            return (loss * mask).sum() / mask.sum()

    return MAE()


def step(model: Any, kind: str, batch: int, image: int, num_classes: int, *, device: str = "cpu",
         bf16_autocast: bool = False, compile_backend: str | None = None,
         fused_adamw: bool = True) -> Callable[[], Any]:
    """One AdamW step of `model` (a timm ViT for kind "supervised", a `mae_model` for "mae") on random
    data on `device`: bf16 autocast if asked (parameters and optimizer state stay float32), the model wrapped in
    `torch.compile(backend=compile_backend)` if one is given (the first calls compile)."""
    import torch

    if kind not in ("supervised", "mae"):
        raise ValueError(f"kind={kind!r}; expected 'supervised' or 'mae'")
    torch.manual_seed(0)
    model = model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY, fused=fused_adamw)
    forward = model if compile_backend is None else torch.compile(model, backend=compile_backend)
    images = torch.randn(batch, 3, image, image, device=device)
    labels = torch.randint(0, num_classes, (batch,), device=device)
    autocast = torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=bf16_autocast)

    def run() -> Any:
        opt.zero_grad(set_to_none=True)
        with autocast:
            out = forward(images)
            loss = torch.nn.functional.cross_entropy(out.float(), labels) if kind == "supervised" else out
        loss.backward()
        opt.step()
        return loss

    return run
