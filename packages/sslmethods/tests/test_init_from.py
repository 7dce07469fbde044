"""MAE pre-pretraining's second stage: a run starts from a first stage's encoder, exactly."""

import json
import sys
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest
import vitcore

sys.path.insert(0, str(Path(__file__).parent))
from _engine_toys import SyntheticData  # noqa: E402
from runloop import LoopConfig  # noqa: E402
from sslmethods.pretrain import recipes  # noqa: E402
from sslmethods.pretrain.init_from import exported_encoder_config, load_encoder_into  # noqa: E402
from sslmethods.pretrain.optim import OptimConfig  # noqa: E402
from sslmethods.pretrain.train_state import init_pretrain_state, method_optimizer  # noqa: E402
from sslmethods.pretrain.trainer import TrainConfig, train_method  # noqa: E402

QUIET = {"print_progress": False, "measure_flops": False}
FROZEN = OptimConfig(lr=0.0, weight_decay=0.0, clip_norm=None)  # an update of exactly zero


def _arrays(module):
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(module, eqx.is_array))]


def _data():
    return SyntheticData(8, image_shape=(32, 32, 3), num_classes=10)


@pytest.mark.slow
def test_second_stage_starts_from_the_first_stages_encoder_exactly(tmp_path):
    mae, mae_optim = recipes.build_method("mae", "vit-test", preset="demo", total_steps=2)
    train_method(mae, mae_optim, _data(),
                 TrainConfig(str(tmp_path / "mae"), LoopConfig(steps=2, batch_size=8, **QUIET)))
    first = vitcore.load_pretrained(tmp_path / "mae")

    second, _ = recipes.build_method("supervised", "vit-test", preset="demo", total_steps=1,
                                     backbone=exported_encoder_config(mae), method_overrides={"num_classes": 10})
    assert second.backbone == first.config  # MAE's sin-cos ViT, not the preset's learned position embedding
    cfg = TrainConfig(str(tmp_path / "sup"), LoopConfig(steps=1, batch_size=8, **QUIET),
                      init_from=str(tmp_path / "mae"))
    train_method(second, FROZEN, _data(), cfg)
    exported = vitcore.load_pretrained(tmp_path / "sup")
    assert exported.head is not None
    loaded = _arrays(exported.without_head())
    assert len(loaded) == len(_arrays(first))
    for a, b in zip(loaded, _arrays(first), strict=True):
        np.testing.assert_array_equal(a, b)
    config = json.loads((tmp_path / "sup" / "config.json").read_text())
    # recorded relative to the run's folder, so a moved sweep still finds it (runloop.open_run(paths=))
    assert config["train"]["init_from"] == "../mae"
    assert (tmp_path / "sup" / config["train"]["init_from"]).resolve() == (tmp_path / "mae").resolve()


def test_an_ema_teacher_starts_from_the_loaded_encoder_too():
    method, optim = recipes.build_method("byol", "vit-test", preset="demo", total_steps=5)
    encoder = vitcore.build(exported_encoder_config(method), key=jax.random.key(7))
    state = init_pretrain_state(method, method_optimizer(method, optim, 5), key=jax.random.key(0), encoder=encoder)
    for module in (state.model.backbone, state.extra["target"].backbone):
        for a, b in zip(_arrays(module), _arrays(encoder), strict=True):
            np.testing.assert_array_equal(a, b)
    fresh = init_pretrain_state(method, method_optimizer(method, optim, 5), key=jax.random.key(0))
    for a, b in zip(_arrays(state.model.projector), _arrays(fresh.model.projector), strict=True):
        np.testing.assert_array_equal(a, b)  # heads stay as initialised


def test_another_architecture_or_an_unfinished_run_is_refused(tmp_path):
    mae, _ = recipes.build_method("mae", "vit-test", preset="demo", total_steps=2)
    sincos = vitcore.build(exported_encoder_config(mae), key=jax.random.key(1))
    plain, _ = recipes.build_method("supervised", "vit-test", preset="demo", total_steps=2)  # learned pos_embed
    trainable, state = plain.init(key=jax.random.key(0))
    with pytest.raises(ValueError, match="the encoder to load does not fit Supervised's encoder"):
        load_encoder_into(plain, trainable, state, sincos)
    nfnet = vitcore.create("nfnet-test", key=jax.random.key(2))
    with pytest.raises(ValueError, match="Supervised's encoder is a ViT; the encoder to load is a NFNet"):
        load_encoder_into(plain, trainable, state, nfnet)
    cfg = TrainConfig(str(tmp_path / "out"), LoopConfig(steps=1, batch_size=8, **QUIET), init_from=str(tmp_path))
    with pytest.raises(ValueError, match="not a finished pre-training run"):
        train_method(plain, FROZEN, _data(), cfg)
    assert not (tmp_path / "out").exists()
