"""The verdicts vs scratch: which rows enter, Welch's test and interval against a float64 re-derivation, Holm
against its definition, old tables without seed roles, and report.json's ``verdicts``."""

import json

import numpy as np
import pytest
from flopstudy import ResultRow, compare_to_scratch
from scipy import stats


def _row(method="mae", flops=1e15, seed=0, score=30.0, role="confirm", dataset="i1k", **fields):
    scratch = method == "scratch"
    record = {"method": method, "variant": "", "backbone": "vit-b16", "pretrain_dataset": "" if scratch else dataset,
              "pretrain_steps": 0 if scratch else 100, "pretrain_flops": 0.0 if scratch else flops, "task": "seg",
              "seed": seed, "score": score, "status": "done", "seed_role": role} | fields
    return ResultRow.from_record(record)


def _welch(a, b):
    """Welch's two-sided test and 95% interval of mean(a) - mean(b), from the formulas (float64)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    d = a.mean() - b.mean()
    p = 2 * stats.t.sf(abs(d) / se, df)
    half = stats.t.ppf(0.975, df) * se
    return d, (d - half, d + half), p


def _holm(p):
    """Holm's step-down adjustment from its definition: max over earlier sorted (m - i) * p_(i), capped at 1."""
    order = np.argsort(p)
    adjusted, running = np.empty(len(p)), 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (len(p) - i) * p[j]))
        adjusted[j] = running
    return adjusted


SCRATCH = (20.0, 21.5, 19.0, 20.5, 21.0)
POINTS = {("mae", 1e15): (23.0, 24.5, 22.0, 23.5), ("clip", 1e15): (20.5, 22.0, 19.5, 21.5),
          ("byol", 4e15): (17.0, 18.5, 16.0, 18.0)}


def _rows():
    rows = [_row("scratch", seed=s, score=v) for s, v in enumerate(SCRATCH)]
    for (method, flops), scores in POINTS.items():
        rows.append(_row(method, flops, seed=0, score=60.0, role="explore"))  # the choosing seed: never tested
        rows += [_row(method, flops, seed=1 + s, score=v) for s, v in enumerate(scores)]
    rows.append(_row("simclr", 1e15, seed=0, score=80.0, role="explore"))  # explore only: not compared
    rows.append(_row("dino", 1e15, seed=1, score=50.0))  # one confirm seed: no variance, not compared
    rows.append(_row("mae", 1e15, seed=5, score=None, status="failed"))  # not done: not used
    return rows


def test_verdicts_match_welch_and_holm_re_derived():
    verdicts = compare_to_scratch(_rows(), alpha=0.05)
    assert [(v.method, v.pretrain_flops) for v in verdicts] == [("byol", 4e15), ("clip", 1e15), ("mae", 1e15)]
    expected = {key: _welch(scores, SCRATCH) for key, scores in POINTS.items()}
    adjusted = _holm(np.array([expected[(v.method, v.pretrain_flops)][2] for v in verdicts]))
    for v, p_adj in zip(verdicts, adjusted, strict=True):
        effect, interval, p = expected[(v.method, v.pretrain_flops)]
        assert v.effect == pytest.approx(effect, abs=1e-12) and v.p_value == pytest.approx(p, rel=1e-9)
        assert v.effect_interval == pytest.approx(interval, rel=1e-9)
        assert v.p_adjusted == pytest.approx(p_adj, rel=1e-9) and v.significant == (p_adj < 0.05)
        assert (v.n_confirm, v.n_baseline, v.baseline, v.variance, v.n_encoders) == (4, 5, "scratch",
                                                                                    "finetune_seeds", 1)
        assert v.mean == pytest.approx(np.mean(POINTS[(v.method, v.pretrain_flops)]))
    # mae clearly above, byol clearly below (two-sided: also a verdict), clip within noise
    assert [v.significant for v in verdicts] == [True, False, True] and verdicts[0].effect < 0
    # a stricter level changes `significant`, not the p-values
    strict = compare_to_scratch(_rows(), alpha=1e-4)
    assert [v.p_adjusted for v in strict] == [v.p_adjusted for v in verdicts]
    assert not any(v.significant for v in strict)
    with pytest.raises(ValueError, match=r"alpha=1.0: expected a level in \(0, 1\)"):
        compare_to_scratch(_rows(), alpha=1.0)


def test_a_point_pre_trained_several_times_is_tested_on_its_encoders_means():
    # config.pretrain_seeds: encoder k's confirm seeds carry pretrain_seed k; the unit is the encoder (the mean of
    # its seeds, whatever their count), so Welch compares 3 encoder means with the 5 scratch seeds
    encoders = {0: (23.0, 24.5, 22.0, 23.5), 1: (21.0, 22.5, 20.0), 2: (24.0, 25.5, 23.0, 24.5)}
    rows = [_row("scratch", seed=s, score=v) for s, v in enumerate(SCRATCH)]
    rows.append(_row("mae", seed=0, score=60.0, role="explore"))  # the choosing seed of encoder 0: never tested
    rows += [_row("mae", seed=1 + s, score=v, pretrain_seed=k) for k, scores in encoders.items()
             for s, v in enumerate(scores)]
    rows += [_row("clip", seed=1 + s, score=v) for s, v in enumerate(POINTS[("clip", 1e15)])]  # one encoder
    clip, mae = compare_to_scratch(rows)
    means = [np.mean(scores) for scores in encoders.values()]
    effect, interval, p = _welch(means, SCRATCH)
    assert (mae.variance, mae.n_confirm, mae.n_encoders, mae.n_baseline) == ("pretrain_and_finetune", 3, 3, 5)
    assert mae.mean == pytest.approx(np.mean(means)) and mae.effect == pytest.approx(effect, abs=1e-12)
    assert mae.p_value == pytest.approx(p, rel=1e-9) and mae.effect_interval == pytest.approx(interval, rel=1e-9)
    assert mae.p_adjusted == pytest.approx(_holm(np.array([_welch(POINTS[("clip", 1e15)], SCRATCH)[2], p]))[1])
    # a point with one encoder is tested on its seeds, exactly as before repeats existed
    assert (clip.variance, clip.n_confirm, clip.n_encoders) == ("finetune_seeds", 4, 1)
    assert clip.p_value == pytest.approx(_welch(POINTS[("clip", 1e15)], SCRATCH)[2], rel=1e-9)
    # a table from before repeats has no pretrain_seed column: every row is encoder 0
    record = {k: ("" if v is None else str(v)) for k, v in rows[-1].to_record().items() if k != "pretrain_seed"}
    assert ResultRow.from_record(record).pretrain_seed == 0
    assert ResultRow.from_record(record | {"pretrain_seed": ""}).pretrain_seed == 0
    with pytest.raises(ValueError, match=r"pretrain_seed='-1' is out of range: expected >= 0"):
        ResultRow.from_record(record | {"pretrain_seed": "-1"})


def test_the_choosing_seed_never_enters_a_verdict():
    rows = _rows()
    high = [r if r.role != "explore" else _row(r.method, r.pretrain_flops, seed=0, score=99.0, role="explore")
            for r in rows]
    assert compare_to_scratch(high) == compare_to_scratch(rows)


def test_old_tables_without_seed_roles_give_no_verdicts_for_pre_trained_points():
    # before seed roles the extra seeds included the seed that chose the point: such rows count as explore
    old = [_row("scratch", seed=s, score=v, role=None) for s, v in enumerate(SCRATCH)]
    old += [_row("mae", seed=s, score=v, role=None) for s, v in enumerate((30.0, 31.0, 29.0))]
    assert [r.role for r in old] == ["confirm"] * 5 + ["explore"] * 3
    assert compare_to_scratch(old) == ()
    csv_record = {k: ("" if v is None else str(v)) for k, v in old[-1].to_record().items()}
    assert ResultRow.from_record(csv_record).seed_role is None
    with pytest.raises(ValueError, match=r"seed_role='chosen': expected one of explore, confirm"):
        _row(role="chosen")


def test_no_seed_variance_is_no_test():
    rows = [_row("scratch", seed=s, score=20.0) for s in range(3)]
    rows += [_row("mae", seed=s, score=25.0) for s in (1, 2)]
    (v,) = compare_to_scratch(rows)
    assert (v.effect, v.p_value, v.p_adjusted, v.effect_interval, v.significant) == (5.0, None, None, None, False)


def test_report_json_holds_the_verdicts_contract(tmp_path):
    from flopstudy import LoadedResults, ReportOptions, write_report

    rows = _rows()
    report = write_report(LoadedResults(tuple(rows), (), ("test",)), tmp_path / "r", ReportOptions(n_boot=20))
    saved = json.loads((tmp_path / "r" / "report.json").read_text())
    assert saved["verdicts"] == report["verdicts"]
    fields = ["task", "method", "variant", "backbone", "pretrain_dataset", "pretrain_flops", "baseline", "effect",
              "effect_interval", "p_value", "p_adjusted", "significant", "n_confirm", "n_baseline", "variance",
              "n_encoders"]
    assert [v["method"] for v in saved["verdicts"]] == ["byol", "clip", "mae"]
    for record, verdict in zip(saved["verdicts"], compare_to_scratch(rows), strict=True):
        assert set(fields) <= set(record)
        assert [record[f] for f in fields] == [list(getattr(verdict, f)) if f == "effect_interval"
                                              else getattr(verdict, f) for f in fields]
    first = saved["summary"][0]
    assert first.startswith("seg, pre-trained vs scratch (Welch's two-sided t-test on confirm seeds, "
                            "Holm-adjusted over the report's 3 compared points, alpha 0.05): 1 of 3 points beats "
                            "scratch significantly; the best, mae vit-b16 on i1k at 1e+15 FLOPs, by +2.85 points")
    assert first.endswith("1 point is significantly below scratch.")
