"""flopwise-report and flopwise-plan (flopstudy.cli) over flopstudy: the report's files, a self-contained offline
HTML page, bad input reported and skipped, all-or-nothing output, one-line CLI errors; a point of unknown FLOPs
(a fine-tune of a run without summary.json) is warned about and kept off the FLOP axis and the front."""

import base64
import dataclasses
import json
import re
from pathlib import Path

import flopstudy
import numpy as np
import pytest
import segtransfer
from flopstudy.cli import plan as plan_tool
from flopstudy.cli import report

ROOT = Path(__file__).resolve().parents[1]
DATA_URI = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")


def _row(**fields):
    return flopstudy.ResultRow.from_record(
        {"method": "mae", "variant": "", "backbone": "vit-b16", "pretrain_dataset": "i1k", "pretrain_steps": 100,
         "pretrain_flops": 1e15, "task": "seg", "seed": 0, "score": 40.0, "status": "done", "score_metric": "mIoU",
         "num_devices": 8} | fields)


def _sweep(root: Path) -> Path:
    """A results.csv: mae and simclr on ViT-B and ViT-L at 3 budgets x 2 seeds, scratch, one run without FLOPs,
    one failed run, plus upstream accuracy for the saturation fit."""
    rows = [_row(method="scratch", pretrain_dataset="", pretrain_steps=0, pretrain_flops=0.0, backbone=b, seed=s,
                 score=20.0 + s) for b in ("vit-b16", "vit-l16") for s in (0, 1)]
    for method, base in (("mae", 50.0), ("simclr", 60.0)):
        for backbone, scale in (("vit-b16", 1.0), ("vit-l16", 3.5)):
            for k in range(3):
                flops = scale * 1e15 * 4**k
                for seed in (0, 1):
                    error = base * (flops / 1e15) ** -0.1 + seed
                    rows.append(_row(method=method, backbone=backbone, pretrain_steps=100 * 4**k,
                                     pretrain_flops=flops, seed=seed, score=100 - error,
                                     upstream_accuracy=100 - 0.8 * error + k, upstream_loss=2.0 / (k + 1)))
    rows.append(_row(method="dino", pretrain_flops=None, run_dir="runs/dino-no-flops"))
    rows.append(_row(method="byol", score=None, status="failed", error="NaN loss at step 9"))
    root.mkdir(parents=True, exist_ok=True)
    flopstudy.write_results_csv(rows, root / "results.csv")
    return root


def test_report_files_and_self_contained_html(tmp_path, capsys):
    sweep = _sweep(tmp_path / "sweep")
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(flopstudy.REQUIRED_COLUMNS) + "\nmae,,vit-b16,i1k,1,1e15,seg,7,500,done\n")
    out = tmp_path / "report"
    figure3 = str(ROOT / "docs" / "figure3.json")
    assert report.main([str(sweep), str(bad), "--out", str(out), "--figure3", figure3]) == 0
    rep = json.loads((out / "report.json").read_text())
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["accuracy_vs_flops.png", "accuracy_i1k_seg.png", "figure3.png", "saturation.png",
                            "upstream_loss.png", "report.md", "report.html", "report.json", "results.csv",
                            ".flopwise-report.json"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind
    page = (out / "report.html").read_text()
    # Offline: no URL of any kind outside the embedded images (whose base64 could spell anything).
    text = DATA_URI.sub("", page)
    for remote in ("http", "//", "src=\"/", "<script", "<link", "url(", "@import"):
        assert remote not in text.lower()
    assert text.count("<img ") == len(rep["figures"]) == 5
    embedded = [base64.b64decode(m) for m in DATA_URI.findall(page)]
    assert embedded == [(out / name).read_bytes() for name in rep["figures"]]
    assert all(png[:8] == b"\x89PNG\r\n\x1a\n" for png in embedded)
    # Bad input and missing FLOPs are named and left out; the failed run is counted.
    problems = rep["problems"]
    assert any(p.startswith(f"{bad}:2: row left out: score='500' is out of range") for p in problems)
    assert any("runs/dino-no-flops: left out of the FLOP axis: no FLOP count for dino" in p for p in problems)
    md = (out / "report.md").read_text()
    assert "## Left out" in md and "score='500' is out of range" in md and "not finished: 1 failed" in md
    # The analysis made it into every output: front, fits, crossover text, e_IR, Figure 3 per image.
    assert "Efficient (Pareto front, scratch included) for seg after pre-training on i1k" in " ".join(rep["summary"])
    assert {t["title"].split(":")[0] for t in rep["tables"]} >= {"seg", "Figure 3", "Saturation (Abnar et al. 2021)"}
    assert "GFLOPs/image" in md and "whole program (all devices)" in md
    assert len(rep["crossovers"]) == 2 and rep["saturation"][0]["fit"]["e_ir"] >= 0
    # The contract of report.json (flopstudy README): a held-out check per curve of 3 budgets, crossovers.
    checks = rep["extrapolation_checks"]
    assert len(checks) == 4 and all(c["form"] == "power" and c["chosen"] for c in checks)
    for c in checks:
        assert set(c) >= {"task", "method", "variant", "backbone", "pretrain_dataset", "form", "held_out_flops",
                          "predicted", "interval", "observed", "inside"}
        top = 16e15 * (3.5 if c["backbone"] == "vit-l16" else 1.0)
        assert c["held_out_flops"] == pytest.approx(top) and isinstance(c["inside"], bool)
        assert c["interval"][0] < c["predicted"] < c["interval"][1]
    for c in rep["crossovers"]:
        assert set(c) >= {"task", "smaller", "larger", "p_cross", "flops", "interval"}
        assert (c["task"], c["smaller"], c["larger"]) == ("seg", "vit-b16", "vit-l16") and 0 <= c["p_cross"] <= 1
    # results.csv is the validated table: every valid row (the failed one too), not the bad one.
    copy = flopstudy.load_results([out / "results.csv"])
    assert len(copy.rows) == 30 and all(r.seed != 7 for r in copy.rows)
    assert json.loads((out / "report.json").read_text())["generator"] == "flopstudy.report"
    output = capsys.readouterr()
    assert "wrote" in output.out and "warning: left out: " in output.err


def test_report_from_finetune_results_and_all_or_nothing_rewrites(tmp_path, monkeypatch):
    for name, kind, method, flops, mious in (("mae", "run", "mae", 1e12, [0.30, 0.32]),
                                             ("scratch", "scratch", None, 0.0, [0.20])):
        (tmp_path / "seg" / name).mkdir(parents=True)
        encoder = {"kind": kind, "method": method, "model": "vit-test", "path": None,
                   "pretrain_dataset": "fmnist_objects" if method else None, "pretrain_steps": 10 if method else 0,
                   "pretrain_flops": flops, "pretrain_kg_co2e": None}
        (tmp_path / "seg" / name / "result.json").write_text(json.dumps(
            {"dataset": "fmnist_scenes", "miou": max(mious), "seeds": list(range(len(mious))),
             "per_seed_miou": mious, "finetune_flops": 1e9, "encoder": encoder}))
    out = tmp_path / "report"
    assert report.main([str(tmp_path / "seg"), "--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert sorted(r["kind"] for r in rep["rows"]) == ["run", "run", "scratch"]
    assert (out / "accuracy_vs_flops.png").read_bytes()[:4] == b"\x89PNG"
    first = (out / "report.md").read_text()
    assert "mae vit-test at 1e+12 FLOPs (31.0%)" in first  # median of 2 seeds, on the front above scratch
    # A report killed while writing leaves the previous one whole and no staging folder.
    monkeypatch.setattr(flopstudy.report.writer, "write_results_csv",
                        lambda *a: (_ for _ in ()).throw(OSError("killed")))
    assert report.main([str(tmp_path / "seg"), "--out", str(out)]) == 2
    assert (out / "report.md").read_text() == first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # A folder with anything but report files is never replaced.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(ValueError, match=r"is not empty and was not written by flopwise-report"):
        flopstudy.write_report(flopstudy.load_results([tmp_path / "seg"]), tmp_path / "mine")


def test_a_point_of_unknown_flops_is_named_and_kept_off_the_axis_and_the_front(tmp_path, capsys):
    # What `flopwise-finetune-seg --allow-unknown-flops` writes for a run folder without summary.json: an encoder
    # record with no method, steps or FLOPs (segtransfer.load_encoder), next to a normal run and scratch.
    unknown = segtransfer.EncoderInfo(kind="run", path=str(tmp_path / "hand-saved"), model="vit-test")
    known = segtransfer.EncoderInfo(kind="run", path=str(tmp_path / "mae-run"), method="mae", model="vit-test",
                                    pretrain_dataset="fmnist_objects", pretrain_steps=10, pretrain_flops=1e12)
    scratch = segtransfer.EncoderInfo(kind="scratch", model="vit-test", pretrain_flops=0.0, pretrain_steps=0)
    for name, encoder, miou in (("unknown", unknown, 0.9), ("mae", known, 0.3), ("scratch", scratch, 0.2)):
        (tmp_path / "seg" / name).mkdir(parents=True)
        (tmp_path / "seg" / name / "result.json").write_text(json.dumps(
            {"dataset": "fmnist_scenes", "miou": miou, "seeds": [0], "per_seed_miou": [miou],
             "finetune_flops": 1e9, "encoder": encoder.to_json()}))
    out = tmp_path / "report"
    assert report.main([str(tmp_path / "seg"), "--out", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    where = str(tmp_path / "seg" / "unknown")
    assert [p for p in rep["problems"] if "left out of the FLOP axis" in p] == [
        f"{where}: left out of the FLOP axis: no FLOP count for run vit-test on - -> fmnist_scenes segmentation, "
        f"? steps, seed 0 ({where})"]
    assert f"warning: left out: {where}: left out of the FLOP axis" in capsys.readouterr().err
    labels = [p["label"] for panel in rep["front"] for p in panel["points"]]
    assert labels and not any("run vit-test" in label for label in labels)  # the best score, yet not on the front
    assert any(label.startswith("mae") for label in labels)
    assert sorted(r["kind"] for r in rep["rows"]) == ["run", "run", "scratch"]  # still in the table


@pytest.mark.parametrize(("argv", "message"), [
    (["{tmp}/missing", "--out", "{tmp}/r"], "error: RESULTS '{tmp}/missing' does not exist"),
    (["{tmp}/empty", "--out", "{tmp}/r"], "error: no result rows in {tmp}/empty: expected results.csv"),
    (["{tmp}/sweep", "--out", "{tmp}/r", "--flops", "per-chip"], "error: argument --flops: invalid choice"),
    (["{tmp}/sweep", "--out", "{tmp}/r", "--figure3", "{tmp}/sweep/results.csv"],
     "error: --figure3 '{tmp}/sweep/results.csv': expected the JSON of flopwise-profile --table"),
    (["{tmp}/sweep", "--out", "{tmp}/r", "--reach", "1.5"],
     "error: argument --reach: expected a fraction in (0, 1], got '1.5'"),
])
def test_report_cli_bad_input_is_one_line(tmp_path, capsys, argv, message):
    _sweep(tmp_path / "sweep")
    (tmp_path / "empty").mkdir()
    assert report.main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message.format(tmp=tmp_path)) and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_plan_cli_recommends_and_warns(tmp_path, capsys):
    sweep = _sweep(tmp_path / "sweep")
    assert plan_tool.main([str(sweep), "--budget", "1.6e17", "--hardware", "tpu-v3", "--chips", "32",
                           "--region", "gcp:europe-west1"]) == 0
    out = capsys.readouterr().out
    assert "best: pre-train mae" in out
    assert "warning: extrapolation: 10x beyond the largest measured budget (1.6e+16 FLOPs)" in out
    assert "assumed MFU of 40%" in out and "kgCO2e" in out
    assert "validation: 10x beyond the last validated budget (1.6e+16 FLOPs), where the power law" in out
    # Further than 10x beyond a curve's measured FLOPs: refused unless asked for.
    assert plan_tool.main([str(sweep), "--budget", "1e18"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --budget 1e+18 FLOPs: ") and "pass --allow-extrapolation" in err
    assert err.count("\n") == 1
    assert plan_tool.main([str(sweep), "--budget", "1e18", "--allow-extrapolation"]) == 0
    assert "62.5x beyond the last validated budget" in capsys.readouterr().out
    for argv, message in ((["--budget", "3e18x"], "error: --budget '3e18x': expected FLOPs"),
                          (["--budget", "1e16", "--region", "mars"], "error: region='mars' is unknown"),
                          (["--budget", "1e16", "--task", "det"], "error: --task 'det': expected one of ['seg']")):
        assert plan_tool.main([str(sweep), *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1


def _welch_holm(points, scratch):
    """Effect, 95% interval and Holm-adjusted p of Welch's two-sided test per point, from the formulas."""
    from scipy import stats

    out = []
    for scores in points:
        a, b = np.asarray(scores, np.float64), np.asarray(scratch, np.float64)
        va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
        df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
        d, se = a.mean() - b.mean(), np.sqrt(va + vb)
        half = stats.t.ppf(0.975, df) * se
        out.append([d, d - half, d + half, 2 * stats.t.sf(abs(d) / se, df), a.mean()])
    order = np.argsort([o[3] for o in out])
    running = 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (len(out) - rank) * out[k][3]))
        out[k][3] = running
    return out


SCRATCH = (20.0, 21.0, 22.0, 20.5, 21.5)
HEAD = ("seg, pre-trained vs scratch (Welch's two-sided t-test on confirm seeds, Holm-adjusted over the report's 2 "
        "compared points, alpha 0.05): ")


@pytest.mark.parametrize("tight, wide, words", [
    # both beat scratch significantly: the larger effect is named with its evidence, the other after it
    ((30.0, 31.0, 29.0, 30.5), (26.0, 25.0, 27.0, 26.5), "2 of 2 points beat scratch significantly; the best, mae "
     "vit-b16 on i1k at 4e+15 FLOPs, by {0}. Also significant: mae vit-b16 on i1k at 1.6e+16 FLOPs, {1:+.2f} "
     "(adjusted p {1p:.2g})."),
    # the higher mean is too noisy to count; the tight one does
    ((24.5, 24.0, 25.0, 24.5), (25.0, 19.0, 30.0, 26.0), "1 of 2 points beats scratch significantly; the best, mae "
     "vit-b16 on i1k at 4e+15 FLOPs, by {0}."),
    # nothing survives: said plainly, with the largest effect and its evidence
    ((22.5, 21.5, 23.0, 20.0), (22.0, 21.0, 22.5, 19.0), "no pre-trained point beats scratch significantly (2 points "
     "tested); the largest effect, mae vit-b16 on i1k at 4e+15 FLOPs, is {0}."),
    ((17.0, 18.0, 16.0, 17.5), (21.0, 20.0, 22.0, 21.0), "no pre-trained point beats scratch significantly (2 points "
     "tested); the largest effect, mae vit-b16 on i1k at 1.6e+16 FLOPs, is {1}. 1 point is significantly below "
     "scratch."),
])
def test_summary_gives_the_verdict_from_confirm_seeds(tight, wide, words):
    rows = [_row(method="scratch", pretrain_dataset="", pretrain_steps=0, pretrain_flops=0.0, seed=s, score=v,
                 seed_role="confirm") for s, v in enumerate(SCRATCH)]
    rows += [_row(pretrain_flops=1e15, score=40.0, seed_role="explore")]  # the highest score, but not confirmed
    for flops, scores in ((4e15, tight), (1.6e16, wide)):
        rows += [_row(pretrain_flops=flops, seed=0, score=35.0, seed_role="explore")]  # the choosing seed: unused
        rows += [_row(pretrain_flops=flops, seed=1 + s, score=v, seed_role="confirm") for s, v in enumerate(scores)]
    analysis = flopstudy.analysis.study.analyse(rows)
    line = flopstudy.report.summary.versus_scratch(analysis, "seg")
    ref = _welch_holm((tight, wide), SCRATCH)

    def evidence(d, lo, hi, p, mean):
        return (f"{d:+.2f} points (95% interval {lo:+.2f} to {hi:+.2f}, adjusted p {p:.2g}; {mean:.2f}% on 4 "
                f"confirm seeds vs {np.mean(SCRATCH):.2f}% on 5)")

    assert line == HEAD + words.replace("{1:+.2f}", f"{ref[1][0]:+.2f}").replace("{1p:.2g}", f"{ref[1][3]:.2g}") \
        .format(evidence(*ref[0]), evidence(*ref[1]))
    assert line == flopstudy.report.summary.summary_lines(analysis)[0]
    # a table from before seed roles (no seed_role column): its pre-trained seeds chose the points, no verdict
    old = [dataclasses.replace(r, seed_role=None) for r in rows]
    assert flopstudy.report.summary.versus_scratch(flopstudy.analysis.study.analyse(old), "seg") is None


def test_tables_1_2_sit_at_the_budget_most_methods_share_in_steps_or_flops():
    # a sweep budgeted in FLOPs: methods run different step counts to the same FLOPs (within a step's FLOPs)
    by_flops = [_row(method=m, pretrain_steps=steps, pretrain_flops=flops, pretrain_dataset=d, score=score)
                for m, steps, flops in (("mae", 613, 4.0003e11), ("clip", 1102, 3.9998e11), ("mae", 1226, 8.0e11))
                for d, score in (("objects", 30.0), ("scenes", 31.0))]
    analysis = flopstudy.analysis.study.analyse(by_flops)
    assert flopstudy.report.study_tables.default_table_budget(analysis, "seg") == ("flops", 4e11)
    table = flopstudy.report.study_tables.budget_table(analysis, "seg", "vit-b16", flops=4e11)
    assert table.title == "seg: score (%) by pre-training dataset, vit-b16, 4e+11 pre-training FLOPs"
    assert table.rows == (("clip", "30.0", "31.0"), ("mae", "30.0", "31.0"))
    # a sweep budgeted in steps (the study): the same steps, different FLOPs
    by_steps = [_row(method=m, pretrain_steps=500, pretrain_flops=f) for m, f in (("mae", 1e15), ("clip", 3e15))]
    analysis = flopstudy.analysis.study.analyse(by_steps)
    assert flopstudy.report.study_tables.default_table_budget(analysis, "seg") == ("steps", 500)
    rows = flopstudy.report.study_tables.budget_table(analysis, "seg", "vit-b16", 500).rows
    assert [r[0] for r in rows] == ["clip", "mae"]
    with pytest.raises(ValueError, match="steps=500, flops=400000000000.0: give exactly one"):
        flopstudy.report.study_tables.budget_table(analysis, "seg", "vit-b16", 500, flops=4e11)


def _tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_report_refuses_a_folder_holding_the_users_own_files_and_leaves_them(tmp_path, capsys):
    sweep = _sweep(tmp_path / "sweep")
    out = tmp_path / "figures"
    out.mkdir()
    (out / "my_plot.png").write_bytes(b"\x89PNG mine")
    (out / "results.csv").write_text("my own table\n")
    before = _tree(out)
    assert report.main([str(sweep), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --out {str(out)!r} is not empty and was not written by flopwise-report")
    assert err.count("\n") == 1 and _tree(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_report_never_overwrites_its_input(tmp_path, capsys):
    sweep = _sweep(tmp_path / "sweep")
    bad = sweep / "extra.csv"  # a row the report leaves out: rewriting the input would drop it
    bad.write_text(",".join(flopstudy.REQUIRED_COLUMNS) + "\nmae,,vit-b16,i1k,1,1e15,seg,7,500,done\n")
    before = _tree(sweep)
    for argv in ([str(sweep), "--out", str(sweep)], [str(sweep / "results.csv"), "--out", str(sweep)],
                 [str(bad), str(tmp_path / "sweep" / "results.csv"), "--out", str(sweep)]):
        assert report.main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: --out {argv[-1]!r} holds this report's input") and err.count("\n") == 1
        assert _tree(sweep) == before
    # its own results.csv as input, written back into the same report folder: refused too
    out = sweep / "report"  # a report folder inside the sweep root is the documented layout
    assert report.main([str(sweep), "--out", str(out)]) == 0
    first = _tree(out)
    assert report.main([str(out / "results.csv"), "--out", str(out)]) == 2
    assert "holds this report's input" in capsys.readouterr().err and _tree(out) == first


def test_report_replaces_only_what_it_wrote(tmp_path, capsys):
    sweep = _sweep(tmp_path / "sweep")
    out = tmp_path / "report"
    assert report.main([str(sweep), "--out", str(out)]) == 0
    marker = json.loads((out / ".flopwise-report.json").read_text())
    assert marker["written_by"] == "flopwise-report"
    assert sorted(marker["files"]) == sorted(p.name for p in out.iterdir() if p.name != ".flopwise-report.json")
    assert report.main([str(sweep), "--out", str(out)]) == 0  # its own folder: replaced whole
    (out / "annotated.png").write_bytes(b"mine")  # a file the user added to the report folder
    before = _tree(out)
    assert report.main([str(sweep), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds files the report did not write (['annotated.png'])" in err and _tree(out) == before
    # a folder from before the marker is replaced only when it is a whole report and nothing else
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    for name in ("report.json", "report.md", "report.html", "results.csv", "accuracy_vs_flops.png"):
        (legacy / name).write_text("old")
    assert report.main([str(sweep), "--out", str(legacy)]) == 0
    assert (legacy / ".flopwise-report.json").is_file() and (legacy / "report.md").read_text() != "old"
    partial = tmp_path / "partial"  # PNGs and a table but no report: the user's
    partial.mkdir()
    (partial / "report.md").write_text("mine")
    (partial / "results.csv").write_text("mine")
    assert report.main([str(sweep), "--out", str(partial)]) == 2
    assert (partial / "report.md").read_text() == "mine"
