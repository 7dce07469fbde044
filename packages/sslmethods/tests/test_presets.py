"""Presets carry the study's numbers (Koppula et al. 2022, appendix A.3) per method and dataset."""

import dataclasses

import pytest
from sslmethods.pretrain.presets import METHOD_NAMES, PRESET_NAMES, STUDY_BATCH_SIZE, get_preset


def test_study_batch_sizes():
    assert STUDY_BATCH_SIZE == {"supervised": 4096, "clip": 4096, "simclr": 4096, "byol": 4096, "dino": 1024,
                                "mae": 4096}


@pytest.mark.parametrize("dataset", ["i1k", "i21k", "jft", "align", "coco"])
def test_clip_same_for_all_datasets(dataset):
    overrides, opt = get_preset("clip", f"paper:{dataset}")
    assert (opt.optimizer, opt.lr, opt.start_lr, opt.weight_decay, opt.b1, opt.b2, opt.clip_norm,
            opt.warmup_steps) == ("adamw", 1e-3, 1e-7, 2e-2, 0.9, 0.95, 1.0, 10_000)
    assert overrides["embed_dim"] == 768 and overrides["max_caption_chars"] == 55


@pytest.mark.parametrize("dataset, tau, wd", [("jft", 0.99, 0.1), ("align", 0.99, 0.1), ("i1k", 0.996, 0.1),
                                              ("i21k", 0.996, 0.1), ("coco", 0.97, 1e-6)])
def test_byol_per_dataset(dataset, tau, wd):
    overrides, opt = get_preset("byol", f"paper:{dataset}")
    assert overrides["tau_base"] == tau
    assert (opt.lr, opt.weight_decay, opt.b1, opt.b2, opt.warmup_fraction) == (3e-4, wd, 0.9, 0.999, 0.05)
    _, simclr = get_preset("simclr", f"paper:{dataset}")
    assert simclr == opt  # "SimCLR uses these same optimization settings (but no target EMA)"


@pytest.mark.parametrize("dataset, lr, clip", [("jft", 1e-4, 0.1), ("i1k", 7.5e-4, 1.0), ("align", 7.5e-4, 1.0)])
def test_dino(dataset, lr, clip):
    overrides, opt = get_preset("dino", f"paper:{dataset}")
    assert (opt.lr, opt.clip_norm, opt.min_lr, opt.warmup_steps) == (lr, clip, 2e-6, 12_000)
    assert opt.clip_mode == "per_tensor" and overrides["drop_path"] == 0.1  # DINO's clip_gradients, drop_path_rate
    assert (opt.weight_decay, opt.weight_decay_end) == (0.04, 0.4)
    assert overrides["num_local_crops"] == 10 and overrides["out_dim"] == 65_536
    assert (overrides["teacher_temp_start"], overrides["teacher_temp_end"], overrides["center_momentum"]) == (
        0.04, 0.07, 0.9)


def test_supervised_and_mae():
    overrides, opt = get_preset("supervised", "paper:jft")
    assert (opt.lr, opt.warmup_steps, opt.weight_decay, opt.b1, opt.b2, opt.clip_norm) == (
        1e-4, 6_000, 0.3, 0.9, 0.95, 1.0)
    assert overrides["drop_path"] == 0.1 and overrides["head_bias_init"] == -10.0
    overrides, opt = get_preset("mae", "paper:i1k")
    assert opt.optimizer == "adamw" and opt.b2 == 0.95 and overrides["mask_ratio"] == 0.75
    assert opt.lr == pytest.approx(1.5e-4 * 4096 / 256)  # facebookresearch/mae: blr x batch / 256


@pytest.mark.parametrize("method", METHOD_NAMES)
def test_demo_is_short_and_valid(method):
    overrides, opt = get_preset(method, "demo")
    assert opt.warmup_steps is None and 0 < opt.warmup_fraction <= 0.2  # warmup scales with tiny runs
    assert opt.clip_norm is not None
    assert dataclasses.replace(opt) == opt
    assert isinstance(overrides, dict)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="paper:i1k, paper:i21k, paper:jft, paper:align, paper:coco, demo"):
        get_preset("dino", "paper:imagenet")
    with pytest.raises(ValueError, match="supervised, clip, simclr, byol, dino, mae"):
        get_preset("moco", "demo")
    assert len(PRESET_NAMES) == 6


def test_a_user_method_falls_back_to_its_own_fields_and_simclrs_optimizer():
    from sslmethods.methods.method import AbstractMethod

    class Custom(AbstractMethod):  # get_preset only looks at the class: the abstract hooks do not matter
        name = "custom"

    for name in PRESET_NAMES:
        overrides, opt = get_preset(Custom, name)
        assert overrides == {}
        assert opt == get_preset("simclr", name)[1]
    import sslmethods

    for method, cls in sslmethods.METHODS.items():  # a built-in class gets its own presets
        assert get_preset(cls, "paper:coco") == get_preset(method, "paper:coco")
