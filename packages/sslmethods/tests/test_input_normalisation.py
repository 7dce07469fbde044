"""The contract of docs/design.md section 2: a pre-training run's exported encoder.json records the input
normalisation its encoder applies ("mean", "std"), and the encoder loaded back applies the same."""

import json

import jax.numpy as jnp
import jax.random as jr
import numpy as np
import vitcore
from sslmethods.pretrain.export import export_encoder
from vitcore import load_pretrained


def test_exported_encoder_json_records_mean_and_std(tmp_path):
    encoder = vitcore.create("vit-test", key=jr.key(0), mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))
    export_encoder(encoder, tmp_path)
    config = json.loads((tmp_path / "encoder.json").read_text())["config"]
    assert (config["mean"], config["std"]) == ([0.5, 0.5, 0.5], [0.25, 0.5, 1.0])
    default = vitcore.create("vit-test", key=jr.key(0))
    export_encoder(default, tmp_path / "default")
    config = json.loads((tmp_path / "default" / "encoder.json").read_text())["config"]
    assert (config["mean"], config["std"]) == ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    pixels = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)), jnp.float32)
    loaded = load_pretrained(tmp_path)
    np.testing.assert_array_equal(np.asarray(loaded(pixels).pooled), np.asarray(encoder(pixels).pooled))
