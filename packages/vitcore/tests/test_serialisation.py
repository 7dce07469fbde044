"""encoder_files / load_pretrained: exact round trip, the run-directory layout, and errors."""

import dataclasses
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import vitcore


def _leaves(model):
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(model, eqx.is_array))]


def _write(model, directory):
    """Writes the encoder's files the plain way (runs write them atomically with runloop.write_files_atomic)."""
    files = vitcore.encoder_files(model)
    assert list(files) == ["encoder.eqx", "encoder.json"]  # weights first, config last
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"scan_layers": True, "image_size": (32, 16), "pos_embed": "sincos", "class_token": False, "pool": "mean"}],
)
def test_round_trip_is_exact(tmp_path, overrides):
    model = vitcore.create("vit-test", key=jr.key(0), **overrides)
    _write(model, tmp_path / "enc")
    loaded = vitcore.load_pretrained(tmp_path / "enc")
    assert loaded.config == model.config  # tuple image_size restored from the JSON list
    for a, b in zip(_leaves(model), _leaves(loaded), strict=True):
        np.testing.assert_array_equal(a, b)
    h, w = vitcore.config.image_hw(model.config.image_size)
    images = jr.uniform(jr.key(1), (2, h, w, 3))
    np.testing.assert_array_equal(np.asarray(model(images).pooled), np.asarray(loaded(images).pooled))


def test_reads_the_run_directory_layout_written_independently(tmp_path):
    """A directory written independently of encoder_files, with equinox and json directly."""
    model = vitcore.create("vit-test", key=jr.key(2), image_size=16, patch_size=4)
    eqx.tree_serialise_leaves(tmp_path / "encoder.eqx", model)
    info = {"class": "vitcore.ViT", "config": dataclasses.asdict(model.config)}
    (tmp_path / "encoder.json").write_text(json.dumps(info, indent=2, sort_keys=True))
    loaded = vitcore.load_pretrained(tmp_path)
    np.testing.assert_array_equal(np.asarray(loaded.pos_embed), np.asarray(model.pos_embed))
    # and encoder_files produces the same two documents
    _write(model, tmp_path / "again")
    assert json.loads((tmp_path / "again" / "encoder.json").read_text()) == json.loads(json.dumps(info))
    assert (tmp_path / "again" / "encoder.eqx").read_bytes() == (tmp_path / "encoder.eqx").read_bytes()


def test_errors_name_the_problem(tmp_path, without_jaxtyping):
    with pytest.raises(FileNotFoundError, match="encoder.json"):
        vitcore.load_pretrained(tmp_path)
    with pytest.raises(TypeError, match=r"model=dict: expected a vitcore backbone \(ViT or NFNet\)"):
        vitcore.encoder_files({"w": jnp.zeros(3)})
    model = vitcore.create("vit-test", key=jr.key(0))
    _write(model, tmp_path)
    info = json.loads((tmp_path / "encoder.json").read_text())
    (tmp_path / "encoder.json").write_text(json.dumps({"class": "mypkg.ResNet", "config": None}))
    with pytest.raises(ValueError, match="mypkg.ResNet"):
        vitcore.load_pretrained(tmp_path)
    info["config"]["num_expert"] = 4
    (tmp_path / "encoder.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="num_expert"):
        vitcore.load_pretrained(tmp_path)
