"""Result rows from today's fine-tuning outputs: the ``result.json`` files `segtransfer.run_study` (segmentation,
`segtransfer.FinetuneResult`) and `segtransfer.detection.detection_study` (detection,
`segtransfer.DetectionResult`) write.

Each ``result.json`` names its encoder (``kind`` run/timm/scratch, method, model, pre-training dataset, steps and
FLOPs) and holds one headline number per fine-tuning seed, so it becomes one row per seed. When the encoder came
from a pre-training run directory that still has its ``summary.json``, the run's FLOPs per step, devices, batch,
wall time, energy, upstream loss and accuracy (`flopstudy.results.upstream_columns`) fill the optional columns.

Segmentation (a result without ``task``): task ``"<dataset> segmentation"``, score = the seed's mIoU in %, extra
columns ``kind`` (the encoder's source) and ``miou`` (the seed's mIoU as a fraction, as segtransfer reports it).
Detection (``"task": "detection"``): task ``"<dataset> detection"``, score = the seed's box AP (already in %),
score metric ``box AP``, extra columns ``kind`` and ``mask_ap``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .loaded import LoadedResults, Problem
from .rows import STATUS_DONE, ResultRow
from .upstream_columns import upstream_columns

__all__ = ["RESULT_FILE", "collect_finetune_results"]

RESULT_FILE = "result.json"  # segtransfer.segmentation.study.RESULT_FILE (not imported: that would pull in JAX)


def _pretrain_summary(encoder: dict[str, Any]) -> dict[str, Any]:
    path = encoder.get("path")
    summary = Path(path) / "summary.json" if path else None
    if summary is None or not summary.is_file():
        return {}  # a timm file, scratch, or a run directory moved away: upstream columns stay empty
    try:
        loaded = json.loads(summary.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _upstream(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "flops_per_step": summary.get("flops_per_step"),
        "num_devices": summary.get("devices"),
        "pretrain_batch": summary.get("batch_size"),
        "pretrain_seconds": summary.get("wall_seconds"),
        "hardware": summary.get("device_kind"),
        "local_kwh": summary.get("energy_kwh"),
        "local_kg_co2e": summary.get("kg_co2e"),
        **upstream_columns(summary),
    }


def _per_seed(result: dict[str, Any]) -> tuple[str, str, list[tuple[Any, dict[str, Any]]]]:
    """(task label, score metric, [(seed, the row's score and extra columns)]) of a segmentation or detection
    result."""
    seeds = result["seeds"]
    detection = result.get("task") == "detection"
    if detection:
        boxes, masks = result["per_seed_box_ap"], result["per_seed_mask_ap"]
        if not isinstance(masks, list) or len(masks) != len(boxes):
            raise ValueError(f"per_seed_mask_ap={masks!r}: expected one mask AP per seed")
        per_seed = boxes
    else:
        per_seed = result["per_seed_miou"]
    if not isinstance(seeds, list) or not isinstance(per_seed, list) or len(seeds) != len(per_seed):
        raise ValueError(f"seeds={seeds!r} and the per-seed scores {per_seed!r}: expected lists of equal length")
    for value in per_seed:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"the per-seed scores hold {value!r}: expected numbers")
    if detection:
        return (f"{result['dataset']} detection", "box AP",
                [(s, {"score": float(b), "mask_ap": m}) for s, b, m in zip(seeds, boxes, masks, strict=True)])
    return (f"{result['dataset']} segmentation", "mIoU",
            [(s, {"score": 100.0 * m, "miou": m}) for s, m in zip(seeds, per_seed, strict=True)])


def _rows(path: Path, result: dict[str, Any]) -> list[ResultRow]:
    encoder = result["encoder"]
    if not isinstance(encoder, dict):
        raise ValueError(f"encoder={encoder!r}: expected an object (segtransfer's EncoderInfo)")
    kind = encoder["kind"]
    task, metric, per_seed = _per_seed(result)
    summary = _pretrain_summary(encoder) if kind == "run" else {}
    flops_per_step = summary.get("flops_per_step")
    devices = summary.get("devices")
    base = {
        "method": encoder.get("method") or kind,
        "variant": "",
        "backbone": encoder.get("model"),
        "pretrain_dataset": encoder.get("pretrain_dataset") or "",
        "pretrain_steps": encoder.get("pretrain_steps"),
        "pretrain_flops": encoder.get("pretrain_flops"),
        "task": task,
        "status": STATUS_DONE,
        "score_metric": metric,
        "finetune_flops": result.get("finetune_flops"),
        "run_dir": str(path.parent),
        **_upstream(summary),
        "local_kg_co2e": summary.get("kg_co2e", encoder.get("pretrain_kg_co2e")),
        "flops_per_step_per_device": flops_per_step / devices if flops_per_step and devices else None,
        "kind": kind,
    }
    return [ResultRow.from_record(base | {"seed": seed, **values}) for seed, values in per_seed]


def collect_finetune_results(root: str | Path) -> LoadedResults:
    """Rows from every ``result.json`` below ``root`` (sorted by path). A file that is broken (not JSON) or
    foreign (not a fine-tuning result) or holds a value out of range is a `Problem` naming it, and skipped.

    Raises ValueError if ``root`` is not a folder; a folder without any ``result.json`` gives no rows and one
    problem saying so (`load_results` turns "no rows at all" into an error).
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"root={str(root)!r}: expected a folder of fine-tuning results")
    rows, problems, sources = [], [], []
    for path in sorted(root.rglob(RESULT_FILE)):
        try:
            result = json.loads(path.read_text())
            if not isinstance(result, dict):
                raise ValueError(f"expected a JSON object, got {type(result).__name__}")
            rows.extend(_rows(path, result))
            sources.append(str(path))
        except json.JSONDecodeError as err:
            problems.append(Problem(str(path), f"file skipped: not JSON ({err.msg})"))
        except KeyError as err:
            problems.append(Problem(str(path), f"file skipped: not a fine-tuning result (no {err.args[0]!r})"))
        except (OSError, TypeError, ValueError) as err:
            problems.append(Problem(str(path), f"file skipped: {err}"))
    if not rows and not problems:
        problems.append(Problem(str(root), f"no {RESULT_FILE} below this folder"))
    return LoadedResults(tuple(rows), tuple(problems), tuple(sources))
