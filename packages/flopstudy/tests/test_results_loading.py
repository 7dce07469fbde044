"""The results table: schema validation, CSV/JSONL/sweep-root loading, bad input, fine-tuning results."""

import json

import pytest
from flopstudy import (
    REQUIRED_COLUMNS,
    ResultRow,
    apply_flop_convention,
    collect_finetune_results,
    load_results,
    write_results_csv,
)

HEADER = ",".join(REQUIRED_COLUMNS)


def test_contract_columns_are_the_design_ones():
    assert REQUIRED_COLUMNS == ("method", "variant", "backbone", "pretrain_dataset", "pretrain_steps",
                                "pretrain_flops", "task", "seed", "score", "status")


def test_csv_round_trip_keeps_types_empty_cells_and_extras(tmp_path, make_row):
    rows = [make_row(upstream_accuracy=61.5, num_devices=4, box_ap=33.0),
            make_row(method="scratch", pretrain_dataset="", pretrain_steps=0, pretrain_flops=0.0, seed=1),
            make_row(pretrain_flops=None, seed=2),
            make_row(status="failed", score=None, error="NaN loss at step 7", seed=3)]
    write_results_csv(rows, tmp_path / "results.csv")
    loaded = load_results([tmp_path])  # a sweep root: its results.csv
    assert loaded.problems == ()
    assert [r.to_record() for r in loaded.rows] == [r.to_record() for r in rows]
    assert loaded.rows[0].num_devices == 4 and isinstance(loaded.rows[0].num_devices, int)
    assert loaded.rows[1].is_scratch and loaded.rows[2].pretrain_flops is None
    assert loaded.rows[0].extras == {"box_ap": 33.0}
    assert not list(tmp_path.glob(".*tmp"))


def test_out_of_range_values_are_reported_and_left_out(tmp_path):
    (tmp_path / "results.csv").write_text(
        f"{HEADER}\n"
        "mae,,vit-b16,i1k,10,1e15,seg,0,41.5,done\n"
        "mae,,vit-b16,i1k,10,1e15,seg,1,500,done\n"
        "mae,,vit-b16,i1k,10,-1e15,seg,2,40,done\n"
        "mae,,vit-b16,i1k,ten,1e15,seg,3,40,done\n"
        "mae,,vit-b16,i1k,10,1e15,seg,4,,done\n")
    loaded = load_results([tmp_path / "results.csv"])
    assert [r.seed for r in loaded.rows] == [0]
    messages = [str(p) for p in loaded.problems]
    assert messages[0].endswith("results.csv:3: row left out: score='500' is out of range: expected 0-100")
    assert "results.csv:4: row left out: pretrain_flops='-1e15' is out of range: expected >= 0" in messages[1]
    assert "results.csv:5: row left out: pretrain_steps='ten': expected an integer" in messages[2]
    assert "results.csv:6: row left out: score is empty but status is 'done'" in messages[3]


def test_row_validation_names_the_column():
    base = {c: "x" for c in REQUIRED_COLUMNS} | {"pretrain_steps": 1, "pretrain_flops": 1.0, "seed": 0,
                                                "score": 1.0, "status": "done"}
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['task'\]"):
        ResultRow.from_record({k: v for k, v in base.items() if k != "task"})
    with pytest.raises(ValueError, match="mfu=1.5 is out of range: expected 0-1"):
        ResultRow.from_record(base | {"mfu": 1.5})
    with pytest.raises(ValueError, match=r"pretrain_flops=0 \(scratch\) but pretrain_steps=5"):
        ResultRow.from_record(base | {"pretrain_flops": 0, "pretrain_steps": 5})
    with pytest.raises(ValueError, match="seed=True: expected an integer, not a boolean"):
        ResultRow.from_record(base | {"seed": True})


def test_jsonl_and_a_broken_or_foreign_file_among_several(tmp_path, make_row):
    good = tmp_path / "a.jsonl"
    good.write_text(json.dumps(make_row().to_record()) + "\n\n" + "{not json\n")
    foreign = tmp_path / "b.csv"
    foreign.write_text("name,value\nx,1\n")
    other = tmp_path / "c.txt"
    other.write_text("hello")
    loaded = load_results([good, foreign, other])
    assert [r.to_record() for r in loaded.rows] == [make_row().to_record()]
    messages = [str(p) for p in loaded.problems]
    assert f"{good}:3: row left out: not JSON (Expecting property name enclosed in double quotes)" in messages
    assert any(m.startswith(f"{foreign}: file skipped: not a results table: no column(s) ['method'") for m in messages)
    assert f"{other}: not a results file: expected .csv or .jsonl" in messages


def test_nothing_usable_is_an_error_that_says_so(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no result rows in .*empty: expected results.csv, results.jsonl or "
                                         "fine-tuning result.json files .*no result.json below this folder"):
        load_results([tmp_path / "empty"])
    with pytest.raises(ValueError, match="RESULTS '.*missing' does not exist"):
        load_results([tmp_path / "missing"])


def test_duplicates_are_reported_once(tmp_path, make_row):
    write_results_csv([make_row(), make_row(score=50.0)], tmp_path / "results.csv")
    loaded = load_results([tmp_path])
    assert [r.score for r in loaded.rows] == [40.0]
    assert "duplicate row left out: mae vit-b16 on i1k -> seg, 100 steps, seed 0" in str(loaded.problems[0])


def test_per_device_convention_divides_by_devices_and_flags_unknown(make_row):
    rows, problems = apply_flop_convention(
        [make_row(num_devices=32), make_row(seed=1), make_row(pretrain_flops=0.0, pretrain_steps=0, seed=2)],
        "per-device")
    assert [r.pretrain_flops for r in rows] == [1e18 / 32, None, 0.0]
    assert rows[0].step_flops == 1e18 / 100 / 32  # per step follows the same convention
    assert len(problems) == 1 and "no num_devices for per-device FLOPs" in problems[0].message
    with pytest.raises(ValueError, match="convention='per-chip': expected one of"):
        apply_flop_convention(rows, "per-chip")


def _finetune(path, encoder, per_seed, seeds=None):
    path.mkdir(parents=True)
    seeds = list(range(len(per_seed))) if seeds is None else seeds
    (path / "result.json").write_text(json.dumps({
        "dataset": "fmnist_scenes", "miou": sorted(per_seed)[len(per_seed) // 2], "aacc": 0.9,
        "finetune_flops": 5e9, "seeds": seeds, "per_seed_miou": per_seed, "encoder": encoder}))


def test_collect_finetune_results_one_row_per_seed_with_upstream_metrics(tmp_path):
    pre = tmp_path / "pretrain" / "mae"
    pre.mkdir(parents=True)
    (pre / "summary.json").write_text(json.dumps({
        "flops_per_step": 4e8, "devices": 4, "batch_size": 16, "wall_seconds": 20.0, "device_kind": "cpu",
        "energy_kwh": None, "kg_co2e": None, "final_metrics": {"loss": 1.25},
        "knn": [{"step": 1, "knn_top1": 0.2}, {"step": 3, "knn_top1": 0.5}]}))
    run = {"kind": "run", "method": "mae", "model": "vit-test", "path": str(pre), "pretrain_dataset": "fmnist_objects",
           "pretrain_flops": 1.2e9, "pretrain_kg_co2e": None, "pretrain_steps": 3}
    scratch = {"kind": "scratch", "method": None, "model": "vit-test", "path": None, "pretrain_dataset": None,
               "pretrain_flops": 0.0, "pretrain_kg_co2e": None, "pretrain_steps": 0}
    _finetune(tmp_path / "seg" / "mae", run, [0.10, 0.12, 0.11], seeds=[0, 1, 2])
    _finetune(tmp_path / "seg" / "scratch", scratch, [0.08])
    (tmp_path / "seg" / "broken").mkdir()
    (tmp_path / "seg" / "broken" / "result.json").write_text("{")
    (tmp_path / "seg" / "foreign").mkdir()
    (tmp_path / "seg" / "foreign" / "result.json").write_text('{"hello": 1}')
    _finetune(tmp_path / "seg" / "bad", run, [1.5])

    loaded = collect_finetune_results(tmp_path / "seg")
    mae = [r for r in loaded.rows if r.method == "mae"]
    assert [r.seed for r in mae] == [0, 1, 2]
    assert [r.score for r in mae] == pytest.approx([10.0, 12.0, 11.0])
    first = mae[0]
    assert (first.backbone, first.pretrain_dataset, first.task) == ("vit-test", "fmnist_objects",
                                                                    "fmnist_scenes segmentation")
    assert first.pretrain_flops == 1.2e9 and first.finetune_flops == 5e9
    assert first.flops_per_step == 4e8 and first.flops_per_step_per_device == 1e8 and first.num_devices == 4
    assert first.upstream_loss == 1.25 and first.upstream_accuracy == pytest.approx(50.0)
    assert first.extras == {"kind": "run", "miou": 0.10}
    scratch_row = next(r for r in loaded.rows if r.extras["kind"] == "scratch")
    assert scratch_row.is_scratch and scratch_row.method == "scratch" and scratch_row.pretrain_dataset == ""
    messages = sorted(str(p) for p in loaded.problems)
    assert messages[0].startswith(f"{tmp_path / 'seg' / 'bad' / 'result.json'}: file skipped: score=150.0 is out")
    assert messages[1] == f"{tmp_path / 'seg' / 'broken' / 'result.json'}: file skipped: not JSON (Expecting " \
                          "property name enclosed in double quotes)"
    assert messages[2] == (f"{tmp_path / 'seg' / 'foreign' / 'result.json'}: file skipped: not a fine-tuning "
                           "result (no 'encoder')")


def test_readme_schema_table_matches_the_columns():
    from pathlib import Path

    from flopstudy import COLUMNS

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for c in COLUMNS:
        bounds = "" if c.low is None else (f"{c.low:g}-{c.high:g}" if c.high is not None else f">= {c.low:g}")
        assert f"| `{c.name}` | {c.kind} | {'yes' if c.required else ''} | {bounds} | {c.doc} |" in text
