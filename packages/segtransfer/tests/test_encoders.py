"""load_encoder: run directories, timm .npz/.safetensors files (checked against timm's own outputs), scratch."""

import dataclasses
import json
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import runloop
import vitcore
from safetensors.numpy import save_file
from segtransfer import encoder_kind, load_encoder, load_timm_state_dict

FIXTURE = Path(vitcore.__file__).parents[2] / "tests" / "fixtures" / "timm_vit_tiny.npz"


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(tree, eqx.is_array))]


def _run_dir(path, encoder, **summary):
    """A pre-training run directory: the encoder's files and a summary.json (`runloop.PretrainSummary`)."""
    runloop.write_files_atomic(path, vitcore.encoder_files(encoder))
    base = {"dataset": None, "status": "completed", "steps": 0, "batch_size": 8, "flops_per_step": None,
            "total_flops": None}
    runloop.PretrainSummary(**{**base, **summary}).write(path / "summary.json")
    return path


def test_run_directory_encoder_and_provenance(tmp_path):
    vit = vitcore.create("vit-test", key=jr.key(0))
    _run_dir(tmp_path / "run", vit, method="mae", model="vit-test", dataset="fmnist_objects", steps=20,
             flops_per_step=7.5e10, total_flops=1.5e12, kg_co2e=None)
    encoder, info = load_encoder(str(tmp_path / "run"))
    for a, b in zip(_leaves(vit), _leaves(encoder), strict=True):
        np.testing.assert_array_equal(a, b)
    assert info.to_json() == {"kind": "run", "path": str((tmp_path / "run").resolve()), "method": "mae",
                              "model": "vit-test", "pretrain_dataset": "fmnist_objects", "pretrain_steps": 20,
                              "pretrain_flops": 1.5e12, "pretrain_kg_co2e": None}
    with pytest.raises(ValueError, match="pre-trained 'vit-test'"):
        load_encoder(str(tmp_path / "run"), model="vit-demo")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    (tmp_path / "run" / "summary.json").write_text(json.dumps({**summary, "total_flops": -1.0}))
    with pytest.raises(ValueError, match=r"summary.json is not a valid pre-training summary \(total_flops=-1.0"):
        load_encoder(str(tmp_path / "run"))


def test_run_directory_with_classifier_head_is_made_headless(tmp_path):
    vit = vitcore.create("vit-test", key=jr.key(1), num_classes=10)
    _run_dir(tmp_path / "sup", vit, method="supervised", model="vit-test")
    encoder, _ = load_encoder(str(tmp_path / "sup"))
    assert encoder.head is None and encoder.config == dataclasses.replace(vit.config, num_classes=0)
    images = jr.uniform(jr.key(2), (2, 32, 32, 3))
    np.testing.assert_array_equal(np.asarray(encoder(images).patch_tokens), np.asarray(vit(images).patch_tokens))


def test_timm_npz_reproduces_timm_features_and_safetensors_matches(tmp_path):
    data = np.load(FIXTURE)
    encoder, info = load_encoder(str(FIXTURE), model="vit-test")
    assert info.kind == "timm" and info.pretrain_flops is None and encoder.head is None
    # timm's forward_features (after the final norm), stored in the fixture by tools/make_timm_fixture.py
    tokens = np.asarray(encoder(jnp.asarray(data["images"])).tokens, np.float64)
    assert np.max(np.abs(tokens - data["tokens"])) / np.max(np.abs(data["tokens"])) < 1e-4
    state = load_timm_state_dict(FIXTURE)
    assert "head.weight" in state and "images" not in state  # only the param/ arrays
    save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(tmp_path / "w.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(  # as timm / the Hugging Face hub ship it
        {"architecture": "vit_tiny", "pretrained_cfg": {"mean": data["mean"].tolist(), "std": data["std"].tolist()}}))
    again, _ = load_encoder(str(tmp_path / "w.safetensors"), model="vit-test")
    for a, b in zip(_leaves(encoder), _leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)
    assert again.config.mean == encoder.config.mean and again.config.std == encoder.config.std


def test_a_timm_files_normalisation_comes_from_its_config_or_is_given_never_assumed(tmp_path):
    from segtransfer.encoders import timm_normalisation

    pytest.importorskip("safetensors")
    from safetensors.numpy import save_file

    weights = tmp_path / "augreg" / "model.safetensors"
    weights.parent.mkdir()
    save_file({k: np.ascontiguousarray(v) for k, v in load_timm_state_dict(FIXTURE).items()}, str(weights))
    with pytest.raises(ValueError, match=r"its input normalisation is unknown .*; pass --mean/--std"):
        load_encoder(str(weights), model="vit-test", normalisation_flags="--mean/--std")
    half = [0.5, 0.5, 0.5]
    (weights.parent / "config.json").write_text(json.dumps({"pretrained_cfg": {"mean": half, "std": half}}))
    encoder, _ = load_encoder(str(weights), model="vit-test")
    assert encoder.config.mean == (0.5, 0.5, 0.5) and encoder.config.std == (0.5, 0.5, 0.5)
    pixels = jr.uniform(jr.key(3), (1, 32, 32, 3))
    # the model sees (x - 0.5) / 0.5: the same tokens as the ImageNet-normalised model on re-scaled pixels
    imagenet = (np.asarray(vitcore.IMAGENET_MEAN), np.asarray(vitcore.IMAGENET_STD))
    given, _ = load_encoder(str(weights), model="vit-test", mean=imagenet[0].tolist(), std=imagenet[1].tolist())
    assert given.config.mean == tuple(imagenet[0].tolist())  # explicit values win over the file's
    rescaled = (np.asarray(pixels) - 0.5) / 0.5 * imagenet[1] + imagenet[0]
    np.testing.assert_allclose(np.asarray(encoder(pixels).tokens), np.asarray(given(jnp.asarray(rescaled)).tokens),
                               rtol=1e-4, atol=1e-4)
    (weights.parent / "config.json").write_text(json.dumps({"mean": [0.1, 0.2, 0.3], "std": [0.4, 0.5, 0.6]}))
    assert timm_normalisation(weights) == ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))  # timm's flat pretrained_cfg
    for config, message in (({"pretrained_cfg": {"mean": [0.5], "std": [0.5]}}, "expected 3 finite means"),
                            ({"mean": [0.5] * 3, "std": [0, 1, 1]}, "3 positive standard deviations")):
        (weights.parent / "config.json").write_text(json.dumps(config))
        with pytest.raises(ValueError, match=rf"{weights.parent / 'config.json'}: .*{message}"):
            timm_normalisation(weights)
    with pytest.raises(ValueError, match="give both the mean and the std"):
        timm_normalisation(weights, mean=half)
    with pytest.raises(ValueError, match="only a timm weights file takes a normalisation"):
        load_encoder("scratch", model="vit-test", key=jr.key(0), mean=half, std=half)


def test_timm_encoder_fine_tuned_through_segtransfer_sees_timms_normalisation():
    """The fixture's timm outputs were computed on timm's own preprocessing (resolve_data_config +
    create_transform: ImageNet mean/std) of [0, 1] pixels; a segmenter built on the timm file and fed the same
    [0, 1] pixels must give its head exactly those features, i.e. the encoder normalises as timm did."""
    from segtransfer import create_segmenter

    data = np.load(FIXTURE)
    assert data["images"].min() >= 0 and data["images"].max() <= 1
    encoder, _ = load_encoder(str(FIXTURE), model="vit-test")
    np.testing.assert_allclose(encoder.config.mean, data["mean"])
    np.testing.assert_allclose(encoder.config.std, data["std"])
    segmenter = create_segmenter(encoder, 5, key=jr.key(0))
    pixels = jnp.asarray(data["images"])
    timm_grid = jnp.asarray(data["tokens"][:, 1:].reshape(4, 4, 4, 32))  # timm's patch tokens as a grid
    expected = segmenter.head(timm_grid, (32, 32))
    ours = segmenter(pixels)
    assert np.max(np.abs(np.asarray(ours) - np.asarray(expected))) / np.max(np.abs(np.asarray(expected))) < 1e-4


def test_scratch_and_bad_specs(tmp_path):
    encoder, info = load_encoder("scratch", model="vit-test", key=jr.key(0), image_size=16)
    assert encoder.config.image_size == 16 and info.pretrain_flops == 0.0 and info.kind == "scratch"
    with pytest.raises(ValueError, match="vit-b16"):  # names the valid presets
        load_encoder("scratch", key=jr.key(0))
    with pytest.raises(ValueError, match="key"):
        load_encoder("scratch", model="vit-test")
    with pytest.raises(ValueError, match="file not found"):
        encoder_kind(str(tmp_path / "missing.npz"))
    with pytest.raises(ValueError, match="without encoder.json"):
        encoder_kind(str(tmp_path))
    with pytest.raises(ValueError, match="'scratch', a pre-training run directory"):
        encoder_kind(str(tmp_path / "weights.pth"))
