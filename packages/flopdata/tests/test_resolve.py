"""flopdata.resolve and default_data_dir: names, built directories, version folders, build on first use."""

import re
import shutil
from pathlib import Path

import flopdata
import pytest


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("FLOPWISE_DATA", str(tmp_path / "elsewhere"))
    assert flopdata.default_data_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("FLOPWISE_DATA")
    monkeypatch.chdir(tmp_path)
    assert flopdata.default_data_dir() == tmp_path / "data"


def test_a_built_directory_or_a_folder_of_versions(tiny, tmp_path):
    assert flopdata.resolve(tiny) == Path(tiny)
    folder = tmp_path / "tiny_records"
    for version in ("1.9.0", "1.10.0", "1.2.0"):
        shutil.copytree(tiny, folder / version)
    assert flopdata.resolve(folder) == folder / "1.10.0"  # newest by version number, not by string order


def test_a_name_resolves_under_data_dir(tiny, tmp_path, monkeypatch):
    shutil.copytree(tiny, tmp_path / "ade20k" / "1.0.0")
    assert flopdata.resolve("ade20k", data_dir=tmp_path) == tmp_path / "ade20k" / "1.0.0"
    monkeypatch.setenv("FLOPWISE_DATA", str(tmp_path))
    assert flopdata.resolve("ade20k") == tmp_path / "ade20k" / "1.0.0"


def test_unknown_or_unbuilt_names(tmp_path):
    known = "['ade20k', 'coco_instances', 'fmnist_objects', 'fmnist_scenes', 'image_folder']"
    message = f"dataset 'imagenet9' is not a TFDS directory and not one of the known names {known}"
    with pytest.raises(ValueError, match=re.escape(message)):
        flopdata.resolve("imagenet9", data_dir=tmp_path)
    message = "dataset 'ade20k' is not built; run: flopwise-build-dataset ade20k --source ... --data-dir "
    message += str(tmp_path)
    with pytest.raises(ValueError, match=re.escape(message)):
        flopdata.resolve("ade20k", data_dir=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is a folder but not a built TFDS dataset"):
        flopdata.resolve(tmp_path / "empty")
    assert not (tmp_path / "ade20k").exists()  # nothing was written


def test_embedded_sets_are_built_on_first_use(fake_source, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FLOPWISE_FMNIST", str(fake_source))
    monkeypatch.delenv("FLOPWISE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    directory = flopdata.resolve("fmnist_objects")
    assert directory == tmp_path / "data" / "fmnist_objects" / "1.0.0"
    assert "building fmnist_objects" in capsys.readouterr().err
    assert flopdata.describe(directory).split_sizes == {"train": 50, "test": 50}  # every item of the source
    assert flopdata.resolve("fmnist_objects") == directory  # reused, not rebuilt
    assert "building" not in capsys.readouterr().err


def test_build_checks_options_before_writing(tmp_path):
    message = "ade20k takes the options ['source', 'num_examples', 'seed'], not ['image_size']"
    with pytest.raises(ValueError, match=re.escape(message)):
        flopdata.build("ade20k", data_dir=tmp_path, source=tmp_path, image_size=32)
    with pytest.raises(ValueError, match=r"name='cifar'; expected one of \['ade20k'"):
        flopdata.build("cifar", data_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []
