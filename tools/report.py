"""Accuracy-vs-FLOPs report over fine-tuning results: table (Markdown + JSON), Pareto front, CO2, and a PNG.

Reads every ``result.json`` written by ``tools/finetune_seg.py`` below the given directories. Each result names
its encoder (pre-training method, model, dataset, steps, FLOPs, kgCO2e), so the report needs nothing else.

    python tools/report.py runs/demo --out runs/demo/report [--x total]

``--x pretrain`` (default) puts pre-training FLOPs on the x axis as the study does; ``--x total`` adds the
fine-tuning FLOPs. From-scratch results (no pre-training) are drawn as a horizontal baseline.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flopmeter import pareto_front
from runloop import FinetuneResult, write_bytes_atomic, write_json_atomic


def load_results(roots: list[Path]) -> list[dict]:
    """Every fine-tuning ``result.json`` below ``roots`` (sorted by path); errors name the bad file."""
    rows = []
    for root in roots:
        if not root.exists():
            raise SystemExit(f"error: {root} does not exist")
        for path in sorted(root.rglob("result.json")):
            try:
                result = FinetuneResult.read(path)  # checks every field's range (mIoU in [0, 1], FLOPs >= 0, ...)
            except ValueError as err:
                raise SystemExit(f"error: {err}") from err
            encoder = result.encoder
            rows.append({
                "path": str(path.parent), "kind": encoder.kind, "method": encoder.method or encoder.kind,
                "model": encoder.model, "pretrain_dataset": encoder.pretrain_dataset,
                "pretrain_steps": encoder.pretrain_steps, "pretrain_flops": encoder.pretrain_flops or 0.0,
                "pretrain_kg_co2e": encoder.pretrain_kg_co2e, "finetune_flops": result.finetune_flops or 0.0,
                "dataset": result.dataset, "miou": result.miou, "aacc": result.aacc,
            })
    if not rows:
        raise SystemExit(f"error: no result.json below {', '.join(map(str, roots))}")
    return rows


def analyse(rows: list[dict], x: str) -> dict:
    """Adds the x-axis cost to each row and marks the Pareto front among pre-trained encoders."""
    for row in rows:
        row["cost"] = row["pretrain_flops"] + (row["finetune_flops"] if x == "total" else 0.0)
        row["on_front"] = False
    pretrained = [r for r in rows if r["kind"] != "scratch"]
    if pretrained:
        for i in pareto_front([r["cost"] for r in pretrained], [r["miou"] for r in pretrained]):
            pretrained[i]["on_front"] = True
    scratch = [r["miou"] for r in rows if r["kind"] == "scratch"]
    return {"x": x, "rows": rows, "scratch_miou": max(scratch) if scratch else None}


def markdown(report: dict) -> str:
    lines = [
        "| method | model | pre-train data | steps | pre-train FLOPs | fine-tune FLOPs | kgCO2e | mIoU % | aAcc % "
        "| front |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|:-:|",
    ]
    for r in sorted(report["rows"], key=lambda r: (r["cost"], r["method"])):
        co2 = "" if r["pretrain_kg_co2e"] is None else f"{r['pretrain_kg_co2e']:.3g}"
        lines.append(
            f"| {r['method']} | {r['model'] or ''} | {r['pretrain_dataset'] or '-'} | {r['pretrain_steps'] or 0} "
            f"| {r['pretrain_flops']:.3g} | {r['finetune_flops']:.3g} | {co2} | {100 * r['miou']:.2f} "
            f"| {100 * r['aacc']:.2f} | {'*' if r['on_front'] else ''} |"
        )
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    rows = [r for r in report["rows"] if r["kind"] != "scratch"]
    for method in sorted({r["method"] for r in rows}):
        pts = sorted((r["cost"], 100 * r["miou"]) for r in rows if r["method"] == method)
        ax.plot(*zip(*pts, strict=True), marker="o", label=method)
    front = sorted((r["cost"], 100 * r["miou"]) for r in rows if r["on_front"])
    if front:
        ax.plot(*zip(*front, strict=True), color="black", linestyle="--", linewidth=1, label="Pareto front")
    if report["scratch_miou"] is not None:
        ax.axhline(100 * report["scratch_miou"], color="grey", linestyle=":", label="from scratch")
    if rows and min(r["cost"] for r in rows) > 0:
        ax.set_xscale("log")
    ax.set_xlabel("pre-training FLOPs" if report["x"] == "pretrain" else "pre-training + fine-tuning FLOPs")
    ax.set_ylabel("segmentation mIoU (%)")
    ax.set_title(f"Downstream accuracy vs compute ({rows[0]['dataset'] if rows else ''})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("roots", nargs="+", type=Path, help="directories searched for result.json files")
    parser.add_argument("--out", type=Path, required=True, help="output directory (report.json/.md/.png)")
    parser.add_argument("--x", choices=["pretrain", "total"], default="pretrain")
    args = parser.parse_args(argv)
    report = analyse(load_results(args.roots), args.x)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "report.json", report)
    table = markdown(report)
    write_bytes_atomic(args.out / "report.md", table.encode())
    plot(report, args.out / "accuracy_vs_flops.png")
    print(table)
    print(f"wrote {args.out / 'report.json'}, report.md, accuracy_vs_flops.png")
    return report


if __name__ == "__main__":
    main()
