"""FLOPs of one full training step (forward, backward, optimizer, EMA/teacher work), measured abstractly.

    python tools/profile_flops.py --method mae --model vit-b16 --batch 4096 --mask-ratio 0.75 --json
    python tools/profile_flops.py --table --out runs/figure3      # the study's Figure 3 (+ MAE decoder shares)

The step is compiled, never run, on ``jax.ShapeDtypeStruct`` inputs (``flopmeter.measure``), so paper-scale steps
are measured on a laptop. FLOPs count 2 per multiply-add (XLA); MACs are half. ``analytic`` is
``sslmethods.flops_model`` (backbones + text encoder, no heads or optimizer).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def profile(method: str, model: str, batch: int, *, image_size: int | None = None, mask_ratio: float = 0.75,
            decoder_depth: int = 8, text_encoder: str = "mini") -> dict:
    import equinox as eqx
    import flopmeter
    import jax
    from sslmethods import flops_model, recipes, step, train_state, trainer

    decoder = {8: "mae-decoder", 1: "mae-decoder-tiny"}[decoder_depth]
    overrides = {"mae": {"mask_ratio": mask_ratio, "decoder": decoder},
                 "clip": {"text_encoder": f"text-{text_encoder}"}, "supervised": {"num_classes": 1000}}
    m, optim = recipes.build_method(method, model, preset="paper:i1k", total_steps=250_000, image_size=image_size,
                                    method_overrides=overrides.get(method, {}))
    tx, _ = trainer.build_optimizer(m, optim, 250_000)
    state, _ = train_state.abstract_train_state(m, tx, (1, 1, 1, 1))
    cost = flopmeter.measure(step.make_step_fn(m, tx), state, recipes.batch_struct(m, batch))
    params = sum(x.size for x in jax.tree.leaves(eqx.filter(state.trainable, train_state.is_array_like)))
    cfg = m.backbone
    analytic_kw = {"batch": batch, "mask_ratio": mask_ratio, "decoder_depth": decoder_depth,
                   "num_classes": 1000 if method == "supervised" else 0}
    if method == "clip":
        t = {"mini": (256, 4), "medium": (512, 8)}[text_encoder]
        analytic_kw |= {"text_width": t[0], "text_depth": t[1], "context_length": m.context_length}
    if method == "dino":
        analytic_kw |= {"num_local_crops": m.num_local_crops, "local_size": m.local_size}
    analytic = flops_model.analytic_step_flops(method, cfg, **analytic_kw)
    out = {"method": method, "model": model, "batch": batch, "image_size": cfg.image_size,
           "flops_per_step": cost.flops, "macs_per_step": cost.macs, "analytic_flops_per_step": analytic["flops"],
           "params": int(params), "compile_seconds": cost.compile_seconds, "notes": list(cost.notes)}
    if method == "mae":
        out |= {"mask_ratio": mask_ratio, "decoder_depth": decoder_depth,
                "analytic_decoder_share": analytic["decoder_share"]}
    if method == "clip":
        out["text_encoder"] = text_encoder
    return out


def table(out_dir: Path) -> list[dict]:
    from sslmethods.presets import STUDY_BATCH_SIZE

    rows, start = [], time.perf_counter()
    for model in ("vit-b16", "vit-l16"):
        for method in ("supervised", "clip", "simclr", "byol", "dino"):
            for text in (("mini", "medium") if method == "clip" else ("mini",)):
                rows.append(profile(method, model, STUDY_BATCH_SIZE[method], text_encoder=text))
                print(f"  {method} {model} {text if method == 'clip' else ''}: {rows[-1]['flops_per_step']:.3e}",
                      file=sys.stderr, flush=True)
        for depth in (8, 1):
            for ratio in (0.55, 0.65, 0.75, 0.85):
                rows.append(profile("mae", model, STUDY_BATCH_SIZE["mae"], mask_ratio=ratio, decoder_depth=depth))
                print(f"  mae {model} {ratio} d{depth}: {rows[-1]['flops_per_step']:.3e}", file=sys.stderr,
                      flush=True)
        for ratio in (0.55, 0.65, 0.75, 0.85):  # measured share of the decoder blocks: difference of 8 and 1 layer
            big, tiny = (next(r for r in rows if r["method"] == "mae" and r["model"] == model and
                              r["mask_ratio"] == ratio and r["decoder_depth"] == d) for d in (8, 1))
            block = (big["flops_per_step"] - tiny["flops_per_step"]) / 7
            big["measured_decoder_blocks_share"] = 8 * block / big["flops_per_step"]
            tiny["measured_decoder_blocks_share"] = block / tiny["flops_per_step"]
    seconds = time.perf_counter() - start
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "figure3.json").write_text(json.dumps({"rows": rows, "seconds": seconds}, indent=2))
    (out_dir / "figure3.md").write_text(markdown(rows, seconds))
    bar_chart(rows, out_dir / "figure3.png")
    return rows


def _label(r: dict) -> str:
    if r["method"] == "mae":
        return f"mae {round(r['mask_ratio'] * 100)}% d{r['decoder_depth']}"
    return f"clip ({r['text_encoder']})" if r["method"] == "clip" else r["method"]


def markdown(rows: list[dict], seconds: float) -> str:
    lines = ["| method | model | batch | TFLOPs/step | measured/analytic | decoder share (analytic / measured) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        share = (f"{r['analytic_decoder_share']:.1%} / {r['measured_decoder_blocks_share']:.1%}"
                 if r["method"] == "mae" else "")
        lines.append(f"| {_label(r)} | {r['model']} | {r['batch']} | {r['flops_per_step'] / 1e12:,.1f} | "
                     f"{r['flops_per_step'] / r['analytic_flops_per_step']:.3f} | {share} |")
    return "\n".join(lines) + f"\n\nMeasured abstractly (compiled, not run) in {seconds:.0f} s.\n"


def bar_chart(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 5))
    for offset, model in ((-0.2, "vit-b16"), (0.2, "vit-l16")):
        sub = [r for r in rows if r["model"] == model]
        ax.bar([i + offset for i in range(len(sub))], [r["flops_per_step"] / 1e15 for r in sub], 0.4, label=model)
    labels = [_label(r) for r in rows if r["model"] == "vit-b16"]
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
    ax.set_ylabel("PFLOPs per training step (study batch sizes)")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method")
    p.add_argument("--model")
    p.add_argument("--batch", type=int)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--mask-ratio", type=float, default=0.75)
    p.add_argument("--decoder-depth", type=int, default=8, choices=(1, 8))
    p.add_argument("--text-encoder", default="mini", choices=("mini", "medium"))
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--table", action="store_true", help="the study's Figure 3: markdown, JSON and PNG in --out")
    p.add_argument("--out", default="runs/figure3")
    args = p.parse_args(argv)
    if args.table:
        print(markdown(table(Path(args.out)), 0.0).rsplit("\n\n", 1)[0])
        return
    if not (args.method and args.model and args.batch):
        p.error("--method, --model and --batch are required (or --table)")
    result = profile(args.method, args.model, args.batch, image_size=args.image_size, mask_ratio=args.mask_ratio,
                     decoder_depth=args.decoder_depth, text_encoder=args.text_encoder)
    print(json.dumps(result, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
