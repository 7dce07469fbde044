"""flopwise-build-dataset and flopwise-contact-sheet (flopdata.cli): thin CLIs over flopdata, on fake
Fashion-MNIST idx files."""


import pytest
import tensorflow_datasets as tfds
from flopdata.cli import build_dataset, contact_sheet
from PIL import Image


@pytest.fixture(scope="module")
def fake_source(fake_idx_source):
    """12 train and 12 test items (filled blobs) of classes 0..5 (tests/conftest.py)."""
    return fake_idx_source


def test_command_line_builds_into_data_dir(fake_source, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FLOPWISE_DATA", str(tmp_path / "env_default"))
    assert build_dataset.main(["fmnist_objects", "--source", str(fake_source), "--num-examples", "12"]) == 0
    directory = tmp_path / "env_default" / "fmnist_objects" / "1.0.0"
    out = capsys.readouterr().out
    assert "built fmnist_objects in " in out and out.endswith(f" s: {directory}\n")
    assert len(tfds.builder_from_directory(str(directory)).as_data_source("test")) == 2


def test_command_line_errors_are_one_line(fake_source, tmp_path, capsys):
    code = build_dataset.main(["ade20k", "--source", str(tmp_path), "--image-size", "32", "--data-dir",
                               str(tmp_path)])
    assert code == 2
    assert "error: ade20k takes the options ['source', 'num_examples', 'seed'], not ['image_size']" in (
        capsys.readouterr().err
    )


def test_contact_sheet_command_line(fake_source, tmp_path, capsys):
    assert build_dataset.main(["fmnist_scenes", "--source", str(fake_source), "--num-examples", "6",
                               "--image-size", "32", "--data-dir", str(tmp_path)]) == 0
    directory = tmp_path / "fmnist_scenes" / "1.0.0"
    out = tmp_path / "sheet.png"
    assert contact_sheet.main(["--directory", str(directory), "--count", "3", "--scale", "2", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    with Image.open(out) as sheet:
        # 3 columns of 64 px with 4 px gaps; 3 panels of 64 px with 2 px gaps
        assert sheet.size == (3 * 64 + 2 * 4, 3 * 64 + 2 * 2)
    assert contact_sheet.main(["--directory", str(directory), "--count", "7", "--out", str(tmp_path / "x.png")]) == 2
    assert "count=7 but" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
