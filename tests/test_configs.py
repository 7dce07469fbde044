"""The shipped sweep configs: each loads to the sweep it always did (run ids, task ids, settings), and the study's
paper-scale settings they share come from the library's named presets (`flopstudy.sweep.presets`,
``flopmeter.STUDY_*``) instead of being restated in each file."""

import hashlib
import json
from pathlib import Path

import flopmeter
import pytest
from flopstudy.sweep import Co2Settings, expand, load_sweep
from flopstudy.sweep.presets import ADE20K_SEGMENTATION, PAPER_PRETRAIN, PAPER_SLURM

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

# The ids of the configs as they were before they referred to the presets (computed from that code, not from the
# code under test): config[:arg] -> (number of runs, digest of every run id in plan order with its tasks' ids and
# seeds, digest of the sweep's settings without `slurm`, the task ids). Run and task ids name the folders a sweep
# resumes from: they must never change for these configs. Two deliberate changes since: `convnets.py:paper` trains
# NFNets with Nesterov SGD + AGC (Brock et al. 2021's recipe), a new optimizer and so new runs; and the sweep
# settings' `extra_seeds`/`extra_seeds_by` became `confirm_seeds`/`confirm_by` (docs/statistics.md), which changes
# every settings digest but no run or task id. Settings added since (at their defaults) are left out of the
# settings digest (`ADDED`, `ADDED_TASKS`), so it still shows that everything else is as it was.
ADDED = {"pretrain": {"fsdp": False, "skip_nonfinite": False, "tensorboard": False}}  # config.pretrain = the spec's
# A task's settings added since, at the value every earlier task had (its `later_fields`: left out of its id too);
# a config that sets another value keeps it in the digest.
ADDED_TASKS = {"segmentation": {"sam_shards": None, "augment": "host"}}  # config.tasks.<kind> = the task's spec
BEFORE = {
    "demo.py": (37, "79c85c6110378add", "3e9b05d074c2112a", ("fmnist_scenes_segmentation-ea2a041f5ec0",)),
    "paper.py:jft": (98, "84213470629eb248", "163c985b758f2006", ("ade20k_segmentation-3de884d7c949",)),
    "paper.py:align": (100, "d439b267b7b420e0", "e94d7c22d4fd43be", ("ade20k_segmentation-3de884d7c949",)),
    "paper.py:i1k": (24, "712e57ec71c970f0", "f6064f0818719ad6", ("ade20k_segmentation-3de884d7c949",)),
    "paper.py:i21k": (24, "67ffb19d68a68e11", "76a591ee7b4f5c5a", ("ade20k_segmentation-3de884d7c949",)),
    "paper.py:coco": (24, "b874b41aaa1175c1", "33e8c19e192f20b2", ("ade20k_segmentation-3de884d7c949",)),
    "convnets.py": (8, "47f42e99e261a06f", "9cd5a588514464ba", ("fmnist_scenes_layer_probe-6fc3b93a85e8",)),
    "convnets.py:paper": (24, "ca7b7f28d4061840", "ddb7dde595768680", ("ade20k_segmentation-3de884d7c949",)),
    "prepretrain.py": (9, "bdc2e2a883ea84da", "eda43e5044606cd2", ("fmnist_scenes_layer_probe-6fc3b93a85e8",)),
    "prepretrain.py:paper": (12, "71f598e1f1ab3dda", "b255af3e2162bf1f", ("ade20k_segmentation-3de884d7c949",)),
    "saturation.py": (9, "75e774c9cf16909a", "d0eb9c45dde90e00", ("fmnist_scenes_layer_probe-6fc3b93a85e8",)),
    "saturation.py:paper": (98, "ad9e14fd9d852080", "6852845075212303",
                            ("ade20k_layer_probe-c8f82ab10829", "ade20k_segmentation-3de884d7c949")),
    # the study on a user's own folders (docs/own-data.md), as first released
    "own_data.py": (19, "fd75759aac00ec87", "1659edee072ecb11", ("ade20k_segmentation-91375033bd90",)),
    "own_data.py:smoke": (3, "cd82ed7e676f4829", "4ba68e11f4bf41d9", ("ade20k_segmentation-120d56c96b5d",)),
}
# `slurm` as it was: the paper-scale block (72 h, one node of 8 GPUs and 32 CPUs) where a config had one.
# convnets.py:paper and prepretrain.py:paper now also hold slurm_partition=None (submitit's own default, so the
# jobs are the same), which lets `--config.slurm.slurm_partition=gpu` name a partition for them too.
SLURM = {"timeout_min": 4320, "gpus_per_node": 8, "tasks_per_node": 1, "cpus_per_task": 32, "slurm_partition": None}
PAPER_SCALE = [name for name in BEFORE if name.endswith(":paper") or name.startswith("paper.py")]
# `slurm` of the configs sized for one GPU a run: one GPU and 8 CPUs of a node, 24 h a job.
ONE_GPU = {"timeout_min": 1440, "gpus_per_node": 1, "tasks_per_node": 1, "cpus_per_task": 8, "slurm_partition": None}


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _load(name, overrides=()):
    return load_sweep(str(CONFIGS / name), list(overrides))


def test_every_shipped_config_is_listed():
    files = {name.split(":")[0] for name in BEFORE}
    assert files == {path.name for path in CONFIGS.glob("*.py")}


@pytest.mark.parametrize("name", list(BEFORE))
def test_each_config_loads_to_the_sweep_it_always_did(name):
    sweep = _load(name)
    plan = expand(sweep)
    ids = [[run.run_id, [[t.spec.task_id, list(t.seeds)] for t in plan.tasks[run.run_id]]] for run in plan.runs]
    settings = sweep.to_json()
    for section, added in ADDED.items():
        assert {k: settings[section].pop(k) for k in added} == added
    for kind, added in ADDED_TASKS.items():
        task = settings["tasks"].get(kind, {})
        for k, v in added.items():
            if k in task and task[k] == v:
                del task[k]
    task_ids = tuple(sorted({t.spec.task_id for tasks in plan.tasks.values() for t in tasks}))
    # one comparison, so that a failure shows every value next to the expected one
    assert (len(plan.runs), _digest(ids), _digest({k: v for k, v in settings.items() if k != "slurm"}),
            task_ids) == BEFORE[name]
    assert settings["slurm"] == (SLURM if name in PAPER_SCALE else ONE_GPU if name.startswith("own_data") else {})


@pytest.mark.parametrize("name", PAPER_SCALE)
def test_paper_scale_configs_take_a_partition_and_leave_the_presets_as_they_are(name):
    sweep = _load(name, ["--config.slurm.slurm_partition=gpu", "--config.tasks.segmentation.seeds=1",
                         "--config.pretrain.eval_every=0"])
    assert sweep.slurm == SLURM | {"slurm_partition": "gpu"}
    assert sweep.tasks["segmentation"].seeds == 1 and sweep.pretrain.eval_every == 0
    assert ADE20K_SEGMENTATION["seeds"] == 5 and PAPER_PRETRAIN["eval_every"] == 25_000  # configs hold copies
    assert PAPER_SLURM["slurm_partition"] is None


def test_presets_hold_the_studys_numbers():
    # Koppula et al. 2022, A.4: ADE20K, 80 epochs at batch 16 on 512 px crops, LR {1e-5, 5e-5, 1e-4, 5e-4} x WD
    # {0.1, 0.05, 0.01}, median of 5 seeds, an FCN head of two 256-channel convolutions; A.1: 32 TPUv3 in gcp
    # europe-west1.
    seg = ADE20K_SEGMENTATION
    assert (seg["dataset"], seg["epochs"], seg["steps"], seg["batch"], seg["image_size"]) == ("ade20k", 80.0, None,
                                                                                               16, 512)
    assert seg["lrs"] == (1e-5, 5e-5, 1e-4, 5e-4) and seg["wds"] == (0.1, 0.05, 0.01) and seg["seeds"] == 5
    assert seg["head_channels"] == 256 and seg["photometric"] == "byol" and seg["eval_mode"] == "center_crop"
    reference = ("tpu-v3", 32, "gcp:europe-west1")
    assert (flopmeter.STUDY_HARDWARE, flopmeter.STUDY_CHIPS, flopmeter.STUDY_REGION) == reference
    co2 = Co2Settings()
    assert (co2.hardware, co2.chips, co2.region) == reference
    with pytest.raises(TypeError):
        ADE20K_SEGMENTATION["seeds"] = 1  # read-only: a config cannot change what the next one starts from


def test_no_config_restates_a_preset():
    restated = ("5e-5", "tpu-v3", "europe-west1", "timeout_min", "gpus_per_node", "eval_every=25")
    for path in CONFIGS.glob("*.py"):
        text = path.read_text()
        assert not [literal for literal in restated if literal in text], path.name
