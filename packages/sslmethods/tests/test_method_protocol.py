"""The Method protocol across every registered method: one constructor, the hooks' defaults, batch_spec agreeing
with prepare_batch, dataset fields, and each method's closed-form step cost against the study's arithmetic."""

import dataclasses
import inspect
from typing import ClassVar

import flopmeter
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sslmethods
import vitcore
from sslmethods.methods.method import AbstractMethod

TINY = vitcore.get_config("vit-test", width=32, depth=1, num_heads=2)
NAMES = tuple(f"class {i}" for i in range(10))



def _host_batch(b: int = 3) -> dict[str, np.ndarray]:
    """What the data pipeline yields: images, one label, a -1 padded label list and caption strings."""
    rng = np.random.default_rng(0)
    labels = np.full((b, 8), -1, np.int64)
    labels[:, 0], labels[:, 1] = rng.integers(0, 10, b), rng.integers(0, 10, b)
    return {"image": rng.uniform(0, 1, (b, 32, 32, 3)).astype(np.float32), "label": labels[:, 0].copy(),
            "labels": labels, "caption": np.asarray(["a red bag.", "", "two shoes."][:b])}


@pytest.mark.parametrize("name", list(sslmethods.METHODS))
def test_every_method_takes_backbone_and_total_steps_the_same_way(name, without_jaxtyping):
    cls = sslmethods.METHODS[name]
    params = inspect.signature(cls).parameters
    for field in ("backbone", "total_steps"):
        assert params[field].kind is inspect.Parameter.KEYWORD_ONLY, (name, field)
        assert params[field].default is inspect.Parameter.empty, (name, field)  # no hidden ViT-B default
        assert field not in cls.hyperparameter_names()
    assert cls.hyperparameter_names() == tuple(f.name for f in dataclasses.fields(cls))[2:]
    with pytest.raises(ValueError, match="total_steps=0; expected a positive int"):
        cls(backbone=TINY, total_steps=0)
    with pytest.raises(TypeError, match=r"backbone='vit-b16'; expected a backbone config \(vitcore.ViTConfig, "
                                        r"vitcore.NFNetConfig: vitcore.get_config\)"):
        cls(backbone="vit-b16", total_steps=10)


@pytest.mark.parametrize("name", list(sslmethods.METHODS))
def test_prepare_batch_returns_numeric_numpy_arrays_as_batch_spec_says(name):
    method = sslmethods.METHODS[name](backbone=TINY, total_steps=10,
                                      **({"class_names": NAMES} if name == "clip" else {}))
    out = method.prepare_batch(_host_batch(3))
    assert all(isinstance(v, np.ndarray) and v.dtype.kind in "biuf" for v in out.values()), out
    spec = method.batch_spec(3)
    assert {k: (v.shape, np.dtype(v.dtype)) for k, v in out.items()} == {
        k: (v.shape, np.dtype(v.dtype)) for k, v in spec.items()}
    np.testing.assert_array_equal(out["image"], _host_batch(3)["image"])


class Minimal(AbstractMethod):
    """Only the required hooks: everything else is the protocol's default."""

    name: ClassVar[str] = "minimal"
    scale: float = 1.0

    def init(self, *, key):
        return vitcore.ViT(self.backbone, key=key), {"count": jnp.zeros((), jnp.int32)}

    def views(self, batch, *, step, key):
        return batch

    def loss(self, trainable, state, views, *, step, key):
        return self.scale * jnp.mean(trainable(views["image"]).pooled ** 2), {"metrics": {}}

    def encoder(self, trainable):
        return trainable

    def analytic_macs(self, batch_size):
        return float(batch_size * sslmethods.train_macs(self.backbone))


def test_the_defaults_of_the_protocol(tmp_path):
    method = Minimal(backbone=TINY, total_steps=5)
    trainable, state = method.init(key=jax.random.key(0))
    step = jnp.int32(2)
    assert method.update_state(trainable, state, {}, step=step) is state
    assert method.post_update(trainable, step=step) is trainable
    assert method.adjust_grads(trainable, trainable, step=step) is trainable
    mask = method.weight_decay_mask(trainable)
    assert jax.tree.structure(mask) == jax.tree.structure(vitcore.weight_decay_mask(trainable))
    decays = {jax.tree_util.keystr(path): value for path, value in jax.tree_util.tree_leaves_with_path(mask)}
    assert any(decays.values()) and not all(decays.values())
    for path, value in decays.items():  # the backbones' rule: matmul weights decay, nothing else
        assert value == (path.endswith(".weight") and "norm" not in path), path
    assert method.image_size == 32 and Minimal.hyperparameter_names() == ("scale",)
    assert Minimal.dataset_fields(tmp_path) == {}
    assert method.batch_spec(5) == {"image": jax.ShapeDtypeStruct((5, 32, 32, 3), jnp.float32)}
    out = method.prepare_batch(_host_batch(3))  # drops labels and captions the method does not declare
    assert list(out) == ["image"] and out["image"].shape == (3, 32, 32, 3)


def test_default_prepare_batch_names_what_is_wrong():
    method = Minimal(backbone=TINY, total_steps=5)
    with pytest.raises(ValueError, match=r"batch has keys \['label'\] \(batch size 3\); Minimal needs \['image'\]"):
        method.prepare_batch({"label": np.zeros(3, np.int32)})
    with pytest.raises(ValueError, match=r"batch\['image'\] has shape \(3, 28, 28, 3\) and dtype float32; expected "
                                         r"\(3, 32, 32, 3\) float32"):
        method.prepare_batch({"image": np.zeros((3, 28, 28, 3), np.float32)})
    with pytest.raises(ValueError, match=r"batch\['image'\] has shape \(3, 32, 32, 3\) and dtype uint8"):
        method.prepare_batch({"image": np.zeros((3, 32, 32, 3), np.uint8)})  # 0-255 pixels are not [0, 1]


def test_supervised_prepare_batch_pads_or_cuts_the_label_list():
    method = sslmethods.Supervised(backbone=TINY, total_steps=5, num_classes=10, max_labels=2)
    image = np.zeros((2, 32, 32, 3), np.float32)
    single = method.prepare_batch({"image": image, "label": np.asarray([3, 7])})
    np.testing.assert_array_equal(single["labels"], [[3, -1], [7, -1]])
    multi = method.prepare_batch({"image": image, "labels": np.asarray([[1, 2, 5], [4, -1, -1]])})
    np.testing.assert_array_equal(multi["labels"], [[1, 2], [4, -1]])
    assert multi["labels"].dtype == np.int32


# ---- closed-form step cost (the study's arithmetic, written out from flopmeter's per-image ViT counts) ----

B16 = {"patch_size": 16, "width": 768, "depth": 12}
E = 196 * 16 * 16 * 3 * 768  # patch embedding MACs of a 224 image: its input gradient is never computed


def _forward(size=224, **kw):
    return flopmeter.vit_forward_macs(image_size=size, **B16, **kw)


def _build(name, **overrides):
    return sslmethods.METHODS[name](backbone=vitcore.get_config("vit-b16"), total_steps=10, **overrides)


def test_analytic_macs_follow_the_study_arithmetic():
    f = _forward()
    assert f / 1e9 == pytest.approx(17.56, abs=0.005)  # docs/design.md section 6: ViT-B/16 forward at 224
    train = 3 * f - E
    b = 4
    assert _build("supervised").analytic_macs(b) == b * (3 * (f + 768 * 1000) - E)
    assert _build("simclr").analytic_macs(b) == 2 * b * train  # two views
    assert _build("byol").analytic_macs(b) == b * (2 * train + 2 * f)  # + the target on both views
    local = 3 * _forward(96) - 36 * 16 * 16 * 3 * 768  # 96 = 224 * 96 / 224: 6x6 patches
    assert _build("dino").analytic_macs(b) == b * (2 * train + 2 * f + 10 * local)  # teacher: globals only
    assert _build("dino", num_local_crops=0).analytic_macs(b) == b * (2 * train + 2 * f)
    text = flopmeter.text_encoder_macs(seq_len=57, width=256, depth=4)  # text-mini on CLS + 55 chars + SEP
    assert _build("clip").analytic_macs(b) == b * (train + 3 * text)
    kept = 49  # int(196 * 0.25)
    encoder = _forward(kept_patches=kept)
    decoder = 50 * 768 * 512 + 8 * flopmeter.transformer_block_macs(tokens=197, width=512) + 197 * 512 * 768
    assert _build("mae").analytic_macs(b) == b * (3 * (encoder + decoder) - E)
    tiny = decoder - 7 * flopmeter.transformer_block_macs(tokens=197, width=512)
    assert _build("mae", decoder_depth=1).analytic_macs(b) == b * (3 * (encoder + tiny) - E)
    assert _build("mae", decoder="mae-decoder-tiny").analytic_macs(b) == b * (3 * (encoder + tiny) - E)


def test_dataset_fields_come_from_the_dataset(tmp_path):
    import tensorflow_datasets as tfds

    class Named(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.core.Version("1.0.0")
        url_infos = None  # no checksums file to look up

        def _info(self):
            return self.dataset_info_from_configs(features=tfds.features.FeaturesDict(
                {"label": tfds.features.ClassLabel(names=["cat", "dog", "hat"])}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            yield 0, {"label": 1}

    builder = Named(data_dir=str(tmp_path), file_format="array_record")
    builder.download_and_prepare()
    from sslmethods.pretrain import recipes

    directory = builder.data_dir
    assert recipes.dataset_overrides("supervised", directory) == {"num_classes": 3}
    assert recipes.dataset_overrides("clip", directory) == {"class_names": ("cat", "dog", "hat")}
    assert recipes.dataset_overrides("dino", directory) == {}
    assert recipes.dataset_overrides(Minimal, directory) == {}
    assert recipes.dataset_overrides("supervised", None) == {}
    method, _ = recipes.build_method("supervised", "vit-test", preset="demo", total_steps=5,
                                     method_overrides=recipes.dataset_overrides("supervised", directory))
    assert method.num_classes == 3


def test_clip_on_captions_only_takes_no_class_names(tmp_path):
    import flopdata
    from PIL import Image
    from sslmethods.pretrain import recipes

    (tmp_path / "src").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "src" / "a.png")
    (tmp_path / "src" / "train.csv").write_text("image,caption\na.png,a black square\n")
    directory = flopdata.build("image_folder", data_dir=tmp_path / "data", source=tmp_path / "src")
    assert recipes.dataset_overrides("clip", directory) == {}  # every example has its own caption
    with pytest.raises(ValueError, match="has no ClassLabel feature"):
        recipes.dataset_overrides("supervised", directory)  # supervised needs labels: named, not guessed
