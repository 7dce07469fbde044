"""Sweep configs, overrides and run identities: stable hashes, load-time errors, the shipped configs expanded."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from flopstudy.specs.runs import spec_hash
from flopstudy.sweep import RunDir, RunSpec, expand, load_sweep, repeat_run, task_spec

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = ROOT / "configs"


def _run(**fields):
    """The run of a canonical record (as a spec.json holds it) with ``fields`` changed."""
    base = dict(method="mae", variant="", backbone="vit-test", dataset="fmnist_objects", budget=300,
                budget_unit="steps", batch=64, preset="demo", image_size=32, seed=0)
    record = base | fields
    return RunSpec.from_json({"version": 1, **record, "overrides": list(record.get("overrides", ()))})


def _sweep(**fields):
    base = {"name": "t", "methods": ("mae", "simclr"), "backbones": ("vit-test",), "datasets": ("fmnist_objects",),
            "budgets": (100, 200), "tasks": {"segmentation": {"dataset": "fmnist_scenes", "steps": 3}}}
    return base | fields


def test_run_id_is_the_sha256_of_the_canonical_spec_and_stable_across_processes():
    run = _run(overrides=("method.mask_ratio=0.65", "optim.lr=0.001"))
    canonical = json.dumps(run.to_json(), sort_keys=True, separators=(",", ":"))
    assert run.run_id.endswith("-" + hashlib.sha256(canonical.encode()).hexdigest()[:12])
    assert run.run_id.startswith("mae-vit-test-fmnist_objects-300s-")
    code = ("from flopstudy.sweep import RunSpec; print(RunSpec.from_json({'version': 1, 'method': 'mae', "
            "'variant': '', 'backbone': 'vit-test', 'dataset': 'fmnist_objects', 'budget': 300.0, 'budget_unit': "
            "'steps', 'batch': 64, 'preset': 'demo', 'image_size': 32, 'seed': 0, "
            "'overrides': ['optim.lr=0.001', 'method.mask_ratio=0.65']}).run_id)")
    env = os.environ | {"PYTHONHASHSEED": "123"}
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert other.stdout.strip() == run.run_id  # 300.0 == 300 steps, override order does not matter


def test_what_changes_a_run_changes_its_id_and_how_it_runs_does_not():
    base = _run()
    assert len({base.run_id, _run(budget=600).run_id, _run(variant="x", overrides=("method.mask_ratio=0.55",)).run_id,
                _run(seed=1).run_id, _run(batch=32).run_id, _run(budget=3e15, budget_unit="flops").run_id}) == 6
    one = load_sweep(_sweep(pretrain={"log_every": 5}))
    two = load_sweep(_sweep(pretrain={"log_every": 50, "checkpoint_every": 7}))
    assert [r.run_id for r in expand(one).runs] == [r.run_id for r in expand(two).runs]
    seg = dict(dataset="fmnist_scenes", steps=3)
    few, many = (load_sweep(_sweep(tasks={"segmentation": seg | {"seeds": n, "log_every": n}})) for n in (1, 5))
    ids = [task_spec("segmentation", s.tasks["segmentation"]).task_id for s in (few, many)]
    assert ids[0] == ids[1]  # more seeds reuse the task folder
    longer = load_sweep(_sweep(tasks={"segmentation": seg | {"steps": 4}}))
    assert task_spec("segmentation", longer.tasks["segmentation"]).task_id != ids[0]



def test_segmentation_task_ids_of_earlier_sweeps_are_kept():
    """The task holds `segtransfer.SegmentationSpec` since the spec replaced the sweep's own settings class; the
    demo's task id must still be the hash of the canonical JSON the earlier class gave (its 13 result-changing
    fields, written out below), so old sweep folders resume. The options the spec added (eval_batch_size,
    keep_checkpoints, tensorboard) change how a task runs, not its id."""
    demo = {"dataset": "fmnist_scenes", "steps": 1000, "batch": 16, "image_size": 56, "lrs": (3e-3,),
            "wds": (0.05,), "seeds": 1, "head_channels": 32, "norm_groups": 8, "photometric": "none",
            "log_every": 250, "checkpoint_every": 500}
    earlier = {"version": 1, "kind": "segmentation", "label": "fmnist_scenes segmentation", "settings": {
        "dataset": "fmnist_scenes", "steps": 1000, "epochs": None, "batch": 16, "image_size": 56, "lrs": [3e-3],
        "wds": [0.05], "head_channels": 32, "norm_groups": 8, "eval_mode": "center_crop", "warmup": None,
        "photometric": "none"}}
    text = json.dumps(earlier, sort_keys=True, separators=(",", ":"))
    expected = "fmnist_scenes_segmentation-" + hashlib.sha256(text.encode()).hexdigest()[:12]
    for how in ({}, {"eval_batch_size": 4, "keep_checkpoints": 5, "tensorboard": True, "workers": 2}):
        sweep = load_sweep(_sweep(tasks={"segmentation": demo | how}))
        assert task_spec("segmentation", sweep.tasks["segmentation"]).task_id == expected
    assert expected == "fmnist_scenes_segmentation-ea2a041f5ec0"  # configs/demo.py's task folder before the spec
    # SAM per slice is another computation: another id than whole-batch SAM (whose id left sam_shards out)
    whole, sliced = (task_spec("segmentation", load_sweep(_sweep(tasks={"segmentation": demo | sam})).tasks[
        "segmentation"]) for sam in ({"sam_rho": 0.05}, {"sam_rho": 0.05, "sam_shards": 2}))
    assert "sam_shards" not in whole.settings and sliced.settings["sam_shards"] == 2
    assert whole.task_id != sliced.task_id


def test_bad_run_specs_are_rejected():
    with pytest.raises(ValueError, match=r"budget=2.5 steps; expected a whole number >= 1"):
        _run(budget=2.5)
    with pytest.raises(ValueError, match="budget_unit='epochs'"):
        _run(budget_unit="epochs")


def test_a_run_directory_written_by_another_spec_is_an_error_naming_it(tmp_path):
    run = _run()
    RunDir(tmp_path, run).ensure()
    RunDir(tmp_path, run).ensure()  # the same spec again is fine
    spec_file = RunDir(tmp_path, run).path / "spec.json"
    spec_file.write_text(json.dumps(json.loads(spec_file.read_text()) | {"budget": 999}))
    with pytest.raises(ValueError, match=rf"{RunDir(tmp_path, run).path} was written by another spec \(differs in "
                                         r"\['budget'\]\)"):
        RunDir(tmp_path, run).ensure()


@pytest.mark.parametrize(("overrides", "message"), [
    (["--config.budgetz=1"], r"--config.budgetz: no such field; valid fields: backbones, batch, budget_unit"),
    (["--config.batch=abc"], r"--config.batch='abc': expected int like the config's 64"),
    (["--config.tasks.segmentation.stepz=1"], r"--config.tasks.segmentation.stepz: no such field; valid fields: "
                                              r"augment, batch, checkpoint_every, dataset, epochs"),
    (["--config.tasks.segmentation.lrs=('a',)"], r"config.tasks.segmentation.lrs=\('a',\): expected tuple\[float"),
    (["--config.methods=('moco',)"], r"config.methods: method='moco'; expected a registered name \(supervised, clip"),
    (["--config.methods=('nosuchpkg.mod:Cls',)"],
     r"config.methods: method='nosuchpkg.mod:Cls': cannot import module 'nosuchpkg.mod'"),
    (["--config.backbones=('vit-x',)"], r"config.backbones: 'vit-x' is not a preset"),
    (["--config.preset=paper:mnist"], r"config.preset='paper:mnist': expected one of paper:i1k"),
    (["--config.per_method.mae.variants=('method.mask=0.5',)"],
     r"config.per_method.mae: method.mask: not a field of MAE; valid fields: decoder, decoder_depth"),
    (["--config.per_method.mae.set=('optim.lr=fast',)"], r"config.per_method.mae: optim.lr='fast': expected float"),
    (["--config.per_method.moco.batch=1"], r"--config.per_method.moco: no such field; valid fields: byol, clip"),
    (["--config.co2.hardware=tpu-v9"], r"config.co2.hardware: hardware='tpu-v9' is unknown"),
    (["--config.confirm_by=('seed',)"], r"config.confirm_by: 'seed'; expected some of method, variant"),
    (["--config.confirm_seeds=-1"], r"config.confirm_seeds=-1: expected a finite number >= 0"),
    (["--config.extra_seeds=3"], r"--config.extra_seeds: renamed config.confirm_seeds, and it now counts only the "
                                 r"confirm seeds"),
    (["--config.budgets"], r"--config.budgets: expected a value"),
    (["--config.budgets=(100,0)"], r"config.budgets: 0; expected positive flops"),
    (["--config.budgets=(2.5,)", "--config.budget_unit=steps"], r"config.budgets: 2.5; expected positive steps"),
    (["--budgets=1"], r"unrecognised argument '--budgets=1'"),
])
def test_config_errors_name_the_field_and_the_valid_ones(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_sweep(str(CONFIGS / "demo.py"), overrides)


def test_unknown_top_level_keys_and_tasks_are_errors():
    with pytest.raises(ValueError, match=r"config.budgetz: not a sweep setting; valid settings: backbones"):
        load_sweep(_sweep(budgetz=1))
    # a config written before confirm seeds is told what the setting became
    with pytest.raises(ValueError, match=r"config.extra_seeds_by: renamed config.confirm_by"):
        load_sweep(_sweep(extra_seeds_by=("method",)))
    with pytest.raises(ValueError, match=r"config.tasks.classification: not a task; valid tasks: segmentation, "
                                         r"detection"):
        load_sweep(_sweep(tasks={"classification": {}}))
    with pytest.raises(ValueError, match=r"two entries of the sweep give the same run mae \(mask_ratio=0.75\)"):
        variants = ("method.mask_ratio=0.75", "method.mask_ratio=.75")
        expand(load_sweep(_sweep(per_method={"mae": {"variants": variants}})))


def test_demo_config_and_its_overrides():
    sweep = load_sweep(str(CONFIGS / "demo.py"))
    plan = expand(sweep)
    methods, sets, budgets = len(sweep.methods), len(sweep.datasets), len(sweep.budgets)
    assert len(plan.runs) == methods * sets * budgets + 1 and plan.runs[0].is_scratch
    assert sweep.confirm_seeds == 4 and sweep.confirm_by == ("method",)
    # every point's explore seed is the task's seed 0; confirm seeds come after it
    assert {t.seeds for ts in plan.tasks.values() for t in ts} == {t.explore for ts in plan.tasks.values()
                                                                   for t in ts} == {(0,)}
    confirmed = plan.with_confirm([(plan.runs[0].run_id, plan.tasks[plan.runs[0].run_id][0].spec.task_id)], 4)
    assert [t.seeds for t in confirmed.tasks[plan.runs[0].run_id]] == [(0, 1, 2, 3, 4)]
    assert [t.seeds for t in confirmed.tasks[plan.runs[1].run_id]] == [(0,)]
    small = load_sweep(str(CONFIGS / "demo.py"), ["--config.methods=('mae','clip')", "--config.budgets=(50,)",
                                                  "--config.tasks.segmentation.steps", "7"])
    assert len(expand(small).runs) == 2 * sets + 1 and small.tasks["segmentation"].steps == 7
    assert {r.budget for r in expand(small).runs if not r.is_scratch} == {50}
    # the config's supervised settings go with supervised when an override drops it; a typo stays an error
    assert "supervised" in sweep.per_method and "supervised" not in small.per_method
    with pytest.raises(ValueError, match=r"--config.per_method.supervisd: no such field; valid fields: byol"):
        load_sweep(str(CONFIGS / "demo.py"), ["--config.per_method.supervisd={'batch': 8}"])
    with pytest.raises(ValueError, match=r"config.per_method.mae: not a method of this sweep; its methods are clip"):
        load_sweep(_sweep(methods=("clip",), per_method={"mae": {"batch": 8}}))


@pytest.mark.parametrize("arg", ["jft", "align", "i1k", "i21k", "coco"])
def test_paper_configs_load_and_expand_to_the_studys_grid(arg):
    sweep = load_sweep(f"{CONFIGS / 'paper.py'}:{arg}")
    runs = expand(sweep).runs
    budgets = {"jft": (4, 3, 5), "align": (4, 4, 5)}.get(arg, (1, 1, 1))  # (all, dino, mae) budget counts
    # supervised, simclr, byol; dino; clip x 2 text encoders; mae x 5 variants
    per_backbone = 3 * budgets[0] + budgets[1] + 2 * budgets[0] + 5 * budgets[2]
    assert len(runs) == 2 * (per_backbone + 1)
    assert len({r.run_id for r in runs}) == len(runs)
    assert {r.backbone for r in runs} == {"vit-b16", "vit-l16"} and {r.to_json()["preset"] for r in runs} == {
        "", f"paper:{arg}"}
    assert {r.batch for r in runs if r.method == "dino"} == {1024}
    assert {r.batch for r in runs if r.method not in ("dino", "scratch")} == {4096}
    assert {r.variant for r in runs if r.method == "mae"} == {"", "mask_ratio=0.55", "mask_ratio=0.65",
                                                              "mask_ratio=0.85", "decoder=mae-decoder-tiny"}
    assert {r.variant for r in runs if r.method == "clip"} == {"text_encoder=text-mini", "text_encoder=text-medium"}
    seg = sweep.tasks["segmentation"]
    assert (seg.dataset, seg.epochs, seg.batch, seg.image_size, seg.seeds) == ("ade20k", 80, 16, 512, 5)
    assert len(seg.lrs) * len(seg.wds) == 12
    if arg == "jft":
        assert sorted({r.budget for r in runs if r.method == "mae"})[-1] == 500_000
    assert spec_hash(runs[0].to_json()) in runs[0].run_id


def test_backbones_of_any_family_per_backbone_overrides_and_vit_only_methods():
    sweep = load_sweep(_sweep(methods=("supervised", "simclr"), backbones=("vit-test", "nfnet-test"),
                              per_backbone={"nfnet-test": {"set": ("optim.agc=0.01", "optim.clip_norm=None")}}))
    runs = [r for r in expand(sweep).runs if not r.is_scratch]
    assert {r.variant for r in runs} == {""}  # per-backbone overrides do not make a variant
    assert {r.pretrain.set for r in runs if r.backbone == "nfnet-test"} == {("optim.agc=0.01", "optim.clip_norm=None")}
    assert {r.pretrain.set for r in runs if r.backbone == "vit-test"} == {()}
    with pytest.raises(ValueError, match=r"config.methods: method 'mae' requires a ViT backbone \(it masks patch "
                                         r"tokens\); model='nfnet-test' is an NFNet: use a vit-\* preset"):
        load_sweep(_sweep(methods=("mae",), backbones=("vit-test", "nfnet-test")))
    with pytest.raises(ValueError, match=r"config.methods: method 'dino' requires a ViT backbone"):
        load_sweep(_sweep(methods=("dino",), backbones=("nfnet-test",)))
    with pytest.raises(ValueError, match=r"config.per_backbone.vit-b16: not a backbone of this sweep"):
        load_sweep(_sweep(per_backbone={"vit-b16": {"set": ()}}))
    with pytest.raises(ValueError, match=r"config.per_backbone.vit-test: optim.agc='x': expected"):
        load_sweep(_sweep(per_backbone={"vit-test": {"set": ("optim.agc=x",)}}))


def test_prepretrain_settings_are_checked_at_load_time():
    with pytest.raises(ValueError, match=r"config.prepretrain.then: 'clip' is not a method of this sweep"):
        load_sweep(_sweep(prepretrain={"budgets": (10,), "then": ("clip",)}))
    with pytest.raises(ValueError, match=r"config.prepretrain: method.mask: not a field of MAE"):
        load_sweep(_sweep(prepretrain={"budgets": (10,), "then": ("mae",), "set": ("method.mask=0.5",)}))
    with pytest.raises(ValueError, match=r"config.prepretrain.then=\('mae',\) without budgets"):
        load_sweep(_sweep(prepretrain={"then": ("mae",)}))
    plain = expand(load_sweep(_sweep()))
    chained = expand(load_sweep(_sweep(prepretrain={"budgets": (10,), "then": ("simclr",)})))
    # runs without a first stage keep their ids; a chain's id names its first stage
    assert {r.run_id for r in plain.runs} < {r.run_id for r in chained.runs}
    extra = [r for r in chained.runs if r.run_id not in {p.run_id for p in plain.runs}]
    assert [(r.method, r.budget, r.init is None) for r in extra] == [("mae", 10, True), ("simclr", 100, False),
                                                                      ("simclr", 200, False)]
    assert "-after-mae10s-" in extra[1].run_id and RunSpec.from_json(extra[1].to_json()) == extra[1]


def test_pretrain_seeds_add_repeats_of_the_chosen_points_only_and_are_checked():
    with pytest.raises(ValueError, match=r"config.pretrain_seeds=0: expected an integer >= 1"):
        load_sweep(_sweep(pretrain_seeds=0))
    with pytest.raises(ValueError, match=r"config.pretrain_seeds=2: repeated pre-training is fine-tuned with the "
                                         r"confirm seeds; set config.confirm_seeds >= 1"):
        load_sweep(_sweep(pretrain_seeds=2))
    once, thrice = load_sweep(_sweep(confirm_seeds=2)), load_sweep(_sweep(confirm_seeds=2, pretrain_seeds=3))
    assert "pretrain_seeds" not in once.to_json() and thrice.to_json()["pretrain_seeds"] == 3
    plan = expand(thrice)
    assert plan == expand(once) and not plan.repeats  # the first pass is the same sweep
    mae, scratch = next(r for r in plan.runs if r.method == "mae" and r.budget == 200), plan.runs[0]
    task = plan.tasks[mae.run_id][0].spec.task_id
    points = [(mae.run_id, task), (scratch.run_id, task)]
    assert plan.with_confirm(points, 2, 1) == plan.with_confirm(points, 2)  # one pre-training: no repeats
    confirmed = plan.with_confirm(points, 2, 3)
    assert confirmed.runs[:len(plan.runs)] == plan.runs  # the repeats come after every first-pass run
    again = confirmed.runs[len(plan.runs):]
    # scratch has no encoder to repeat; mae 200 is pre-trained with seeds 1 and 2, each its own run
    assert [(r.method, r.budget, r.seed) for r in again] == [("mae", 200, 1), ("mae", 200, 2)]
    assert again == (repeat_run(mae, 1), repeat_run(mae, 2)) and repeat_run(mae, 0) == mae
    assert len({mae.run_id, *(r.run_id for r in again)}) == 3
    assert [confirmed.pretrain_seed(r.run_id) for r in (mae, scratch, *again)] == [0, 0, 1, 2]
    # the task's 5 explore seeds stay recorded (the repeat's rows are confirm rows); its seeds are the confirm ones
    assert [(t.seeds, t.explore) for t in confirmed.tasks[again[0].run_id]] == [((5, 6), (0, 1, 2, 3, 4))]
    assert [t.seeds for t in confirmed.tasks[mae.run_id]] == [(0, 1, 2, 3, 4, 5, 6)]


def test_confirm_points_are_chosen_on_explore_seeds_only():
    # The old choice used the median of the seeds all points shared, the choosing seed included in the chosen
    # point's verdict. Now: the best explore median per group; confirm seeds neither choose nor move the choice.
    import flopstudy
    from flopstudy.sweep import confirm_points

    def row(run, seed, score, flops, method="byol", role="explore"):
        return flopstudy.ResultRow.from_record(
            {"method": method, "variant": "", "backbone": "vit-test", "pretrain_dataset": "fmnist_scenes",
             "pretrain_steps": 0 if method == "scratch" else 10, "pretrain_flops": flops, "task": "seg",
             "seed": seed, "score": score, "status": "done", "score_metric": "mIoU", "run_id": run, "task_id": "t",
             "seed_role": role})

    first = [row("a", 0, 10.76, 8e11), row("b", 0, 10.2, 1.6e12), row("c", 0, 9.0, 4e11),
             row("d", 0, 12.0, 4e11, method="mae"), row("s", 0, 9.5, 0.0, method="scratch", role="confirm")]
    assert confirm_points(first, ("method",)) == [("a", "t"), ("d", "t"), ("s", "t")]
    # a's confirm seeds fall below b's explore seed: the choice stays
    again = first + [row("a", s, v, 8e11, role="confirm") for s, v in ((1, 9.65), (2, 9.28))]
    assert confirm_points(again, ("method",)) == [("a", "t"), ("d", "t"), ("s", "t")]
    # a tie on the explore median goes to fewer FLOPs
    tie = [row("a", 0, 10.0, 8e11), row("c", 0, 10.0, 4e11)]
    assert confirm_points(tie, ("method",)) == [("c", "t")]
