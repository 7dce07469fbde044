"""The study's Figure 3: FLOPs of one training step of every method at ViT-B/16 and ViT-L/16, at the study's
batch sizes, measured abstractly (``step_cost.profile``), with the MAE variants of the study (mask ratio 55-85%,
8-layer and 1-layer decoder) and CLIP with both text encoders::

    rows = table(cache_dir=Path("runs/figure3/.cache"))   # 28 steps, counted on their lowered programs
    write(Path("docs"), rows, seconds)                      # figure3.json, figure3.md, figure3.png

Speed (the 28 steps took ~400 s compiled one after another on a 2-core CPU): by default each step is counted on
its lowered program, without XLA's optimisation passes and code generation (``count="lowered"``, within 0.1% of
the compiled count, docs/benchmarks.md); the steps are traced in ``workers`` processes at once; and with
``cache_dir`` nothing is counted twice: a row is stored under the SHA-256 of its description and of the source of
every package a step is built from (a rerun with unchanged code reads every row back without tracing), and each
program under the SHA-256 of its lowered text (``step_cost``: unchanged programs are not counted again after a
code change elsewhere).

Readers of the table: `load_figure3(path)` gives one `StepCost` per row (the report's Figure 3 plots them).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import importlib.util
import io
import json
import multiprocessing
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import equinox
import jax
import jaxlib
import optax
from runloop import write_bytes_atomic, write_json_atomic

from ..pretrain.presets import STUDY_BATCH_SIZE
from .step_cost import COUNTS, profile

__all__ = ["CONVENTION_NOTE", "MODELS", "ROWS", "StepCost", "bar_chart", "decoder_blocks_share", "label",
           "load_figure3", "markdown", "short_label", "table", "write"]

MODELS = ("vit-b16", "vit-l16")
ROWS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("supervised", {}),
    ("clip", {"text_encoder": "text-mini"}),
    ("clip", {"text_encoder": "text-medium"}),
    ("simclr", {}),
    ("byol", {}),
    ("dino", {}),
    *(("mae", {"mask_ratio": ratio, "decoder_depth": depth}) for depth in (8, 1) for ratio in (0.55, 0.65, 0.75,
                                                                                                0.85)),
)
"""(method, overrides) of every bar, per model."""


Task = tuple[str, str, int, dict[str, Any]]  # (method, model, batch, overrides)


def _code_fingerprint() -> str:
    """SHA-256 of the source of the packages a step is built from and of the versions of its libraries."""
    digest = hashlib.sha256()
    for package in ("flopdata", "flopmeter", "runloop", "vitcore", "sslmethods"):
        root = Path(importlib.util.find_spec(package).origin).parent  # found, not imported: flopdata loads grain
        for path in sorted(root.rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    for module in (jax, jaxlib, equinox, optax):
        digest.update(module.__version__.encode() + b"\0")
    return digest.hexdigest()


def _row_path(cache_dir: Path, fingerprint: str, task: Task, count: str) -> Path:
    key = json.dumps([fingerprint, count, *task], sort_keys=True)
    return cache_dir / "rows" / f"{hashlib.sha256(key.encode()).hexdigest()}.json"


def _measure(task: Task, count: str, cache_dir: str | None) -> dict[str, Any]:
    method, model, batch, overrides = task
    programs = None if cache_dir is None else Path(cache_dir) / "programs"
    return profile(method, model, batch, method_overrides=overrides, count=count, cache_dir=programs)


def table(models: Sequence[str] = MODELS, *, progress: Callable[[dict[str, Any]], None] | None = None,
          count: str = "lowered", workers: int | None = None, cache_dir: str | Path | None = None
          ) -> list[dict[str, Any]]:
    """``step_cost.profile`` of every row of ``ROWS`` on every model, at ``STUDY_BATCH_SIZE``, with the decoder
    blocks' share added to the rows that have a 1-layer twin (``decoder_blocks_share``). ``count``: "lowered"
    (default) or "compiled" (``step_cost``); ``workers``: processes measuring at once (default: the CPU count);
    ``cache_dir``: where measured rows and programs are kept (module docstring). ``progress`` is called with each
    row as it is measured or read, in the order they finish."""
    if count not in COUNTS:
        raise ValueError(f"count={count!r}; expected one of {COUNTS}")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers={workers!r}; expected a positive number of processes")
    tasks: list[Task] = [(m, model, STUDY_BATCH_SIZE[m], dict(o)) for model in models for m, o in ROWS]
    rows: list[dict[str, Any] | None] = [None] * len(tasks)
    cache = None if cache_dir is None else Path(cache_dir)
    fingerprint = _code_fingerprint() if cache is not None else ""

    def done(index: int, row: dict[str, Any]) -> None:
        rows[index] = row
        if cache is not None:
            write_json_atomic(_row_path(cache, fingerprint, tasks[index], count), row)
        if progress is not None:
            progress(row)

    todo = []
    for index, task in enumerate(tasks):
        path = None if cache is None else _row_path(cache, fingerprint, task, count)
        if path is not None and path.exists():
            rows[index] = json.loads(path.read_text())
            if progress is not None:
                progress(rows[index])
        else:
            todo.append(index)
    # The dearest programs first (ViT-L, DINO's 12 crops), so the processes finish together.
    todo.sort(key=lambda i: (tasks[i][1] != "vit-l16", tasks[i][0] != "dino"))
    if workers == 1 or len(todo) <= 1:
        for index in todo:
            done(index, _measure(tasks[index], count, None if cache is None else str(cache)))
    else:
        # spawn, not fork: the parent has JAX's threads running
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(min(workers, len(todo)), mp_context=context) as pool:
            futures = {pool.submit(_measure, tasks[i], count, None if cache is None else str(cache)): i for i in todo}
            for future in concurrent.futures.as_completed(futures):
                done(futures[future], future.result())
    return decoder_blocks_share([row for row in rows if row is not None])


def decoder_blocks_share(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For every pair of rows that differ only in ``decoder_depth`` 8 and 1, the share of the decoder's blocks in
    each step, measured and closed-form: one block costs (step(8) - step(1)) / 7. Adds
    ``decoder_blocks_share`` and ``analytic_decoder_blocks_share`` to both rows."""
    def key(row: dict[str, Any], depth: int | None) -> tuple:
        rest = {k: v for k, v in row["overrides"].items() if k != "decoder_depth"}
        return row["method"], row["model"], row["batch"], tuple(sorted(rest.items())), depth

    by_key = {key(r, r["overrides"].get("decoder_depth")): r for r in rows}
    for big in rows:
        tiny = by_key.get(key(big, 1)) if big["overrides"].get("decoder_depth") == 8 else None
        if tiny is None:
            continue
        for prefix, field in (("", "flops_per_step"), ("analytic_", "analytic_flops_per_step")):
            block = (big[field] - tiny[field]) / 7
            big[f"{prefix}decoder_blocks_share"] = 8 * block / big[field]
            tiny[f"{prefix}decoder_blocks_share"] = block / tiny[field]
    return rows


def label(row: dict[str, Any]) -> str:
    """The method and its overrides, e.g. ``mae mask_ratio=0.75 decoder_depth=8``."""
    return " ".join([row["method"], *(f"{k}={v}" for k, v in row["overrides"].items())])


CONVENTION_NOTE = (
    "FLOPs are the whole step counted with XLA's conventions (2 per multiply-add; `flopmeter.FlopCount` convention "
    "`whole_program`, here one program on one device). The study's axis (8 trays of TPUs) looks like per-device "
    "counts: divide by its device count N to compare (`FlopCount(f, \"whole_program\", 1).to(\"per_device\", "
    "num_devices=N)`). The decoder blocks share is 8 x (step(d8) - step(d1)) / 7 / step on both sides."
)


def markdown(rows: list[dict[str, Any]], seconds: float) -> str:
    """The table of `write`'s ``figure3.md``: one row per step, the FLOP convention stated under it."""
    header = ("| method | model | batch | TFLOPs/step (whole program) | measured/analytic | decoder blocks share "
              "(analytic / measured) |")
    lines = [header, "|---|---|---|---|---|---|"]
    for r in rows:
        share = (f"{r['analytic_decoder_blocks_share']:.1%} / {r['decoder_blocks_share']:.1%}"
                 if "decoder_blocks_share" in r else "")
        lines.append(f"| {label(r)} | {r['model']} | {r['batch']} | {r['flops_per_step'] / 1e12:,.1f} | "
                     f"{r['flops_per_step'] / r['analytic_flops_per_step']:.3f} | {share} |")
    counts = {r.get("count", "compiled") for r in rows}
    how = {"compiled": "compiled, not run", "lowered": "counted on the lowered program: not compiled, not run; "
           "within 0.1% of the compiled count"}
    what = "; ".join(how[c] for c in sorted(counts))
    return "\n".join(lines) + f"\n\nMeasured abstractly ({what}) in {seconds:.0f} s. {CONVENTION_NOTE}\n"


def bar_chart(rows: list[dict[str, Any]]) -> bytes:
    """PNG bytes: PFLOPs per step of every row, one bar per model (log scale)."""
    # Here, not at the top: the Agg backend is chosen before pyplot loads, and only by a caller that draws.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, ax = plt.subplots(figsize=(12, 5))
    width = 0.8 / len(models)
    for index, model in enumerate(models):
        sub = [r for r in rows if r["model"] == model]
        offset = (index - (len(models) - 1) / 2) * width
        ax.bar([i + offset for i in range(len(sub))], [r["flops_per_step"] / 1e15 for r in sub], width, label=model)
    labels = [label(r) for r in rows if r["model"] == models[0]]
    ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("PFLOPs per training step (study batch sizes)")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def write(out_dir: Path, rows: list[dict[str, Any]], seconds: float) -> None:
    """``figure3.json`` (rows and seconds), ``figure3.md`` and ``figure3.png`` in ``out_dir``, each atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / "figure3.json", {"rows": rows, "seconds": seconds})
    write_bytes_atomic(out_dir / "figure3.md", markdown(rows, seconds).encode())
    write_bytes_atomic(out_dir / "figure3.png", bar_chart(rows))


@dataclasses.dataclass(frozen=True)
class StepCost:
    """One row of the table: label (method and variant), model, batch, measured and closed-form FLOPs per step."""

    label: str
    model: str
    batch: int
    flops_per_step: float
    analytic_flops_per_step: float | None

    @property
    def ratio(self) -> float | None:
        """Measured / closed form."""
        return None if not self.analytic_flops_per_step else self.flops_per_step / self.analytic_flops_per_step


def short_label(row: dict[str, Any]) -> str:
    """The method and its variant for a plot, e.g. ``mae 75% d8``, ``clip (text-mini)``; the variant is read from
    the row's ``overrides`` (what `table` writes) or, in older tables, from the row itself."""
    variant = row.get("overrides") or row
    text = str(row["method"])
    if variant.get("text_encoder"):
        text += f" ({variant['text_encoder']})"
    if variant.get("mask_ratio") is not None:
        text += f" {round(100 * float(variant['mask_ratio']))}%"
    if variant.get("decoder_depth") is not None:
        text += f" d{int(variant['decoder_depth'])}"
    return text


def load_figure3(path: str | Path) -> list[StepCost]:
    """The rows of a ``flopwise-profile --table`` JSON (`write`'s ``figure3.json``); ValueError naming the file
    (as the report's ``--figure3`` flag) and what is wrong."""
    path = Path(path)
    try:
        rows = json.loads(path.read_text())["rows"]
        out = [StepCost(short_label(r), str(r["model"]), int(r["batch"]), float(r["flops_per_step"]),
                        None if r.get("analytic_flops_per_step") is None else float(r["analytic_flops_per_step"]))
               for r in rows]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(f"--figure3 {str(path)!r}: expected the JSON of flopwise-profile --table "
                         f"({type(err).__name__}: {err})") from None
    bad = [c.label for c in out if not (c.flops_per_step > 0 and c.batch > 0)]
    if not out or bad:
        raise ValueError(f"--figure3 {str(path)!r}: expected rows with positive flops_per_step and batch "
                         f"(bad: {bad or 'no rows'})")
    return out
