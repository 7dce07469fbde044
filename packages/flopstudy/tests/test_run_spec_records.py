"""A sweep's run spec holds a `sslmethods.PretrainSpec`, and the spec.json files sweeps already wrote keep their
meaning: each record below is literally what the sweep wrote before the change (a step budget with a variant, a
FLOP budget, two chained second stages, two scratch baselines), and reads back to the same run id and the same
bytes, so existing run folders keep their names and resume."""

import dataclasses
import json

import pytest
from flopstudy.specs.runs import RunSpec, ScratchBaseline
from flopstudy.stages import pretrain as stage
from flopstudy.sweep import RunDir
from sslmethods import PretrainSpec

WRITTEN = {  # run id -> spec.json as the sweep wrote it (json.dumps of the record)
    "mae-vit-test-fmnist_objects-300s-d288e9d49c16":
        '{"version": 1, "method": "mae", "variant": "mask_ratio=0.6 optim.lr=0.001", "backbone": "vit-test", '
        '"dataset": "fmnist_objects", "budget": 300, "budget_unit": "steps", "batch": 64, "preset": "demo", '
        '"image_size": 32, "seed": 0, "overrides": ["method.mask_ratio=0.6", "optim.lr=0.001"], "knn_bank": 500, '
        '"knn_query": 250}',
    "clip-vit-test-fmnist_objects-4e+11F-c35359d96f42":
        '{"version": 1, "method": "clip", "variant": "", "backbone": "vit-test", "dataset": "fmnist_objects", '
        '"budget": 400000000000.0, "budget_unit": "flops", "batch": 64, "preset": "demo", "image_size": 32, '
        '"seed": 0, "overrides": [], "knn_bank": 500, "knn_query": 250}',
    "supervised-vit-test-fmnist_objects-300s-after-mae10s-91ffec7f89c1":
        '{"version": 1, "method": "supervised", "variant": "after mae 10 steps", "backbone": "vit-test", '
        '"dataset": "fmnist_objects", "budget": 300, "budget_unit": "steps", "batch": 64, "preset": "demo", '
        '"image_size": 32, "seed": 0, "overrides": ["optim.weight_decay=0.05"], "knn_bank": 500, "knn_query": 250, '
        '"init": {"version": 1, "method": "mae", "variant": "", "backbone": "vit-test", "dataset": "fmnist_objects", '
        '"budget": 10, "budget_unit": "steps", "batch": 64, "preset": "demo", "image_size": 32, "seed": 0, '
        '"overrides": [], "knn_bank": 500, "knn_query": 250}}',
    "supervised-vit-test-fmnist_objects-4e+11F-after-mae10F-ea3f150c436b":
        '{"version": 1, "method": "supervised", "variant": "after mae 10 FLOPs", "backbone": "vit-test", '
        '"dataset": "fmnist_objects", "budget": 400000000000.0, "budget_unit": "flops", "batch": 64, "preset": '
        '"demo", "image_size": 32, "seed": 0, "overrides": ["optim.weight_decay=0.05"], "knn_bank": 500, '
        '"knn_query": 250, "init": {"version": 1, "method": "mae", "variant": "", "backbone": "vit-test", '
        '"dataset": "fmnist_objects", "budget": 10.0, "budget_unit": "flops", "batch": 64, "preset": "demo", '
        '"image_size": 32, "seed": 0, "overrides": [], "knn_bank": 500, "knn_query": 250}}',
    "scratch-vit-test-d803e6270ba9":
        '{"version": 1, "method": "scratch", "variant": "", "backbone": "vit-test", "dataset": "", "budget": 0, '
        '"budget_unit": "steps", "batch": 0, "preset": "", "image_size": null, "seed": 0, "overrides": [], '
        '"knn_bank": 0, "knn_query": 0}',
    "scratch-vit-s16-46da778e3110":
        '{"version": 1, "method": "scratch", "variant": "", "backbone": "vit-s16", "dataset": "", "budget": 0, '
        '"budget_unit": "steps", "batch": 0, "preset": "", "image_size": 64, "seed": 0, "overrides": [], '
        '"knn_bank": 0, "knn_query": 0}',
}


@pytest.mark.parametrize("run_id", list(WRITTEN))
def test_a_written_spec_reads_back_to_the_same_run_id_and_bytes(run_id, tmp_path):
    text = WRITTEN[run_id]
    run = RunSpec.from_json(json.loads(text))
    assert run.run_id == run_id and json.dumps(run.to_json()) == text
    assert RunSpec.from_json(run.to_json()) == run
    # a sweep folder holding that spec.json is this run's folder (no "written by another spec")
    folder = tmp_path / "runs" / run_id
    folder.mkdir(parents=True)
    (folder / "spec.json").write_text(text)
    RunDir(tmp_path, run).ensure()
    assert (folder / "spec.json").read_text() == text


def test_the_spec_is_the_runs_pretrain_spec():
    run = RunSpec.from_json(json.loads(WRITTEN["mae-vit-test-fmnist_objects-300s-d288e9d49c16"]))
    assert run.pretrain == PretrainSpec(method="mae", model="vit-test", dataset="fmnist_objects", steps=300, batch=64,
                                        preset="demo", image_size=32, seed=0, knn_bank=500, knn_query=250,
                                        set=("optim.lr=1e-3", "method.mask_ratio=0.6"))
    assert run.pretrain.overrides.method == {"mask_ratio": 0.6} and run.pretrain.overrides.optim == {"lr": 0.001}
    flops = RunSpec.from_json(json.loads(WRITTEN["clip-vit-test-fmnist_objects-4e+11F-c35359d96f42"]))
    assert (flops.pretrain.steps, flops.pretrain.flops, flops.budget, flops.budget_unit) == (None, 4e11, 4e11, "flops")
    scratch = RunSpec.from_json(json.loads(WRITTEN["scratch-vit-s16-46da778e3110"]))
    assert scratch.pretrain == ScratchBaseline("vit-s16", 64) and scratch == RunSpec.scratch("vit-s16", image_size=64)
    assert (scratch.method, scratch.dataset, scratch.budget, scratch.batch) == ("scratch", "", 0, 0)
    # the stage trains the run's spec with the sweep's settings and its resolved length: nothing else changes
    trained = stage.pretrain_spec(flops, steps=7)
    assert trained == dataclasses.replace(flops.pretrain, steps=7, flops=None)


def test_how_a_run_executes_is_not_part_of_its_identity():
    run = RunSpec.from_json(json.loads(WRITTEN["mae-vit-test-fmnist_objects-300s-d288e9d49c16"]))
    with pytest.raises(ValueError, match=r"^pretrain: log_every=5: a run's identity holds no how-to-run"):
        RunSpec(dataclasses.replace(run.pretrain, log_every=5))
    with pytest.raises(ValueError, match="^a scratch run has budget 0"):
        RunSpec.from_json(json.loads(WRITTEN["scratch-vit-test-d803e6270ba9"]) | {"dataset": "fmnist_objects"})
    with pytest.raises(ValueError, match="^a scratch run has budget 0"):
        RunSpec(ScratchBaseline("vit-test"), variant="x")
