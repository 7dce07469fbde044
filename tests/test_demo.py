"""`make demo` end to end at a tiny size: the demo sweep (pre-training, scratch, segmentation transfer, confirm
seeds for the best point) and its report with the verdict, through tools/demo.py; and, on a finished sweep's
table, what the demo prints last (the report's verdict and crossover sentences, report.html and how to open it)."""

import csv
import json
import shlex
import sys
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import flopstudy
import pytest
from flopstudy.cli import demo

FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
TINY = ["--workers", "0", "--config.methods=('supervised',)", "--config.datasets=('fmnist_objects',)",
        "--config.budgets=(2,)", "--config.budget_unit=steps", "--config.batch=8", "--config.knn_bank=0",
        "--config.confirm_seeds=2",
        "--config.tasks.segmentation.steps=2", "--config.tasks.segmentation.batch=4",
        "--config.build_datasets={'fmnist_objects': {'num_examples': 64, 'image_size': 32}, "
        "'fmnist_scenes': {'num_examples': 48, 'image_size': 32}}"]


@pytest.mark.slow
@pytest.mark.skipif(not FMNIST.exists(), reason="Fashion-MNIST (Debian dataset-fashion-mnist) is not installed")
def test_demo_sweep_runs_end_to_end_and_reports(tmp_path, capsys):
    out = tmp_path / "demo"
    assert demo.main(["--out", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report' / 'report.html'}" in printed
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    # the one pre-trained point is the best of its group: confirm seeds 1 and 2 after its explore seed 0; every
    # scratch seed is a confirm seed
    assert sorted((r["method"], r["seed"], r["seed_role"]) for r in rows) == [
        ("scratch", "0", "confirm"), ("scratch", "1", "confirm"), ("scratch", "2", "confirm"),
        ("supervised", "0", "explore"), ("supervised", "1", "confirm"), ("supervised", "2", "confirm")]
    run = next(r for r in rows if r["method"] == "supervised")
    assert float(run["flops_per_step"]) > 0
    assert float(run["pretrain_flops"]) == pytest.approx(2 * float(run["flops_per_step"]))
    assert all(r["status"] == "done" and 0.0 <= float(r["score"]) <= 100.0 for r in rows)
    # the demo's fine-tuning recipe reaches segtransfer: 56 px, no colour jitter
    configs = [json.loads(p.read_text())["finetune"] for p in out.glob("runs/*/tasks/*/runs/*/config.json")]
    assert len(configs) == 6 and {(c["image_size"], c["photometric"]) for c in configs} == {(56, "none")}
    # the summary's first sentence: the verdict, the point's 2 confirm seeds against scratch's 3
    assert ("- fmnist_scenes segmentation, pre-trained vs scratch (Welch's two-sided t-test on confirm seeds, "
            "Holm-adjusted over the report's ") in printed
    assert "1 of 1 point beats scratch significantly" in printed or "(1 point tested)" in printed
    (verdict,) = json.loads((out / "report" / "report.json").read_text())["verdicts"]
    assert (verdict["method"], verdict["n_confirm"], verdict["n_baseline"]) == ("supervised", 2, 3)
    html = (out / "report" / "report.html").read_text()
    assert "<img" in html and "http://" not in html and "https://" not in html
    assert (out / "report" / "accuracy_vs_flops.png").read_bytes()[:4] == b"\x89PNG"
    # a second call finds every stage done and only rewrites the report
    assert demo.main(["--out", str(out), *TINY]) == 0
    assert "runs done" in capsys.readouterr().out


def _row(method, backbone, flops, seed, score, role):
    scratch = method == "scratch"
    return flopstudy.ResultRow.from_record(
        {"method": method, "variant": "", "backbone": backbone, "pretrain_dataset": "" if scratch else "fmnist_objects",
         "pretrain_steps": 0 if scratch else int(flops / 1e9), "pretrain_flops": 0.0 if scratch else flops,
         "task": "fmnist_scenes segmentation", "seed": seed, "score": score, "status": "done", "seed_role": role,
         "score_metric": "mIoU"})


def _finished_sweep(folder: Path, backbones: tuple[str, ...]) -> Path:
    """A finished sweep's results.csv: clip on each backbone at three budgets (explore seed 0; confirm seeds 1-3
    at the largest), clearly above scratch (confirm seeds 0-3, first backbone); a larger backbone starts lower and
    rises faster."""
    rows = [_row("scratch", backbones[0], 0.0, s, 9.0 + 0.1 * s, "confirm") for s in range(4)]
    for rank, backbone in enumerate(backbones):
        for k, flops in enumerate((4e11, 8e11, 1.6e12)):
            score = 10.0 + k * (0.5 + 1.0 * rank) - 1.0 * rank
            rows.append(_row("clip", backbone, flops, 0, score, "explore"))
            if k == 2:
                rows += [_row("clip", backbone, flops, s, score + 0.05 * s, "confirm") for s in (1, 2, 3)]
    folder.mkdir(parents=True)
    flopstudy.write_results_csv(rows, folder / "results.csv")
    return folder


@pytest.mark.parametrize("backbones", [("vit-test",), ("vit-b16", "vit-l16")])
def test_demo_ends_with_the_reports_verdict_crossover_and_how_to_open_it(tmp_path, capsys, backbones):
    out = _finished_sweep(tmp_path / "demo", backbones)
    report = demo.report_and_close(out, start=0.0)
    printed = capsys.readouterr().out.rstrip("\n").splitlines()
    saved = json.loads((out / "report" / "report.json").read_text())
    assert saved["headline"] == report["headline"]
    # the verdict: the report's own first summary sentence (clip's confirm seeds are ~2.5 points above scratch's)
    verdict = saved["summary"][0]
    assert verdict.startswith("fmnist_scenes segmentation, pre-trained vs scratch (Welch's two-sided t-test")
    assert "1 of 1 point beats scratch significantly" in verdict  # scratch ran on the first backbone only
    crossovers = [f"{c['text']}." for c in saved["crossovers"]]
    if len(backbones) == 1:  # nothing to cross: said in the report's words, in its summary too
        assert crossovers == []
        crossovers = [line for line in saved["summary"] if line.startswith("No backbone crossover")]
        assert crossovers == ["No backbone crossover: every fitted curve uses one backbone (vit-test); a crossover "
                              "compares two backbone sizes with the same method and pre-training set."]
    else:  # vit-l16 starts a point lower and gains 1.5 points per budget doubling against 0.5: it overtakes
        assert len(crossovers) == 1 and "vit-l16" in crossovers[0] and crossovers[0] in saved["summary"]
    verdicts = [v for v in saved["summary"] if v.startswith("fmnist_scenes segmentation, pre-trained vs scratch")]
    assert verdicts == [verdict]
    # the last lines: nothing after them to scroll back for
    page = out / "report" / "report.html"
    tail = printed[-(len(verdicts) + len(crossovers) + 2):]
    assert tail[:-2] == [f"verdict: {v}" for v in verdicts] + [f"crossover: {c}" for c in crossovers]
    assert tail[-2] == f"report: {page} (also report.md and the figures beside it)"
    command = shlex.split(tail[-1].removeprefix("open it: "))
    assert tail[-1].startswith("open it: ") and command[1:3] == ["-m", "webbrowser"]
    assert Path(command[0]).resolve() == Path(sys.executable).resolve()
    assert Path(url2pathname(urlparse(command[3]).path)) == page.resolve() and page.is_file()
