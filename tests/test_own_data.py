"""The study on a user's own data (docs/own-data.md, configs/own_data.py), end to end: real JPEG/PNG files in
ImageNet's class-folder layout, a flat folder with a captions table, and ADE20K's layout; then every command
block of the walk-through at tiny size, as a user runs them; then what they wrote."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from flopstudy.cli import sweep
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from doc_blocks import run_blocks  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("circle", "square", "stripe")
TRAIN_PER_CLASS, TEST_PER_CLASS = 8, 3
CAPTIONED = {"train": 24, "test": 8}
SEGMENTATION = {"training": 8, "validation": 4}


def _picture(rng, shape_name: str, size=(36, 40)) -> np.ndarray:
    """A noisy image whose content depends on its class, so the classes differ in pixels, not just in names."""
    image = rng.integers(0, 96, (*size, 3), dtype=np.uint8)
    h, w = size
    if shape_name == "circle":
        yy, xx = np.mgrid[:h, :w]
        image[(yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (h / 3) ** 2] = 220
    elif shape_name == "square":
        image[h // 4:3 * h // 4, w // 4:3 * w // 4] = 220
    else:
        image[:, ::6] = 220
    return image


def write_fixtures(root: Path) -> None:
    """The three folders of docs/own-data.md, section 1, under ``root``."""
    rng = np.random.default_rng(0)
    for split, count in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        for name in CLASSES:
            folder = root / "my_images" / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                Image.fromarray(_picture(rng, name)).save(folder / f"{i:04d}.jpg", quality=90)
    captioned = root / "my_captioned_images"
    (captioned / "img").mkdir(parents=True)
    for split, count in CAPTIONED.items():
        rows = []
        for i in range(count):
            name = CLASSES[i % len(CLASSES)]
            Image.fromarray(_picture(rng, name)).save(captioned / "img" / f"{split}_{i:04d}.jpg", quality=90)
            rows.append({"image": f"img/{split}_{i:04d}.jpg", "caption": f"a {name} drawn on noise"})
        (captioned / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    segmentation = root / "my_segmentation"
    for folder, count in SEGMENTATION.items():
        (segmentation / "images" / folder).mkdir(parents=True)
        (segmentation / "annotations" / folder).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(_picture(rng, CLASSES[i % 3], (40, 40))).save(
                segmentation / "images" / folder / f"scene_{i:04d}.png")
            labels = np.zeros((40, 40), np.uint8)  # 0: not labelled; classes 1..3 in three regions
            labels[4:20], labels[20:, :20], labels[20:, 20:] = 1, 2, 3
            Image.fromarray(labels).save(segmentation / "annotations" / folder / f"scene_{i:04d}.png")


def test_missing_or_wrong_folders_are_one_error_line_naming_the_flag(tmp_path, capsys):
    write_fixtures(tmp_path)
    config = str(ROOT / "configs" / "own_data.py") + ":smoke"  # the same checks; toy size should one not fail
    out = tmp_path / "own"
    images = f"--config.build_datasets.image_folder.source={tmp_path / 'my_images'}"
    segmentation = f"--config.build_datasets.ade20k.source={tmp_path / 'my_segmentation'}"
    cases = [
        ([images], "error: config.build_datasets.ade20k: ade20k needs source="),
        ([segmentation], "error: config.build_datasets.image_folder: image_folder needs source="),
        ([images, f"--config.build_datasets.ade20k.source={tmp_path / 'nowhere'}"],
         f"error: config.build_datasets.ade20k: ade20k: source '{tmp_path / 'nowhere'}' is not a folder"),
        # a captions table is not the layout of a segmentation set: named by its missing folder
        ([images, f"--config.build_datasets.ade20k.source={tmp_path / 'my_captioned_images'}"],
         "error: config.build_datasets.ade20k: ADE20K split 'train': folder "),
        # images without their captions table (nor class folders): named, not guessed
        ([f"--config.build_datasets.image_folder.source={tmp_path / 'my_captioned_images' / 'img'}", segmentation],
         "error: config.build_datasets.image_folder: image_folder: no SPLIT.csv or SPLIT.jsonl table and no "
         "SPLIT/CLASS/ image folders in"),
    ]
    for flags, message in cases:
        assert sweep.main(["--config", config, "--out", str(out), *flags]) == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1, (flags, err)
        assert not out.exists()  # checked before anything is written: no output folder, no data folder


@pytest.mark.slow
def test_own_data_walkthrough_end_to_end(tmp_path):
    write_fixtures(tmp_path)
    commands = run_blocks("docs/own-data.md", tmp_path, env={"FLOPWISE_JAX_CACHE": str(tmp_path / "jax_cache")})
    assert sum("tools/sweep.py" in c for c in commands) == 2 and not any("--executor slurm" in c for c in commands)
    own = tmp_path / "own"

    # the builds: class folders -> labels named by the folders, every image of each split
    import flopdata

    images = flopdata.resolve(own / "data" / "image_folder")
    assert flopdata.label_names(images) == CLASSES
    assert flopdata.describe(images).split_sizes == {"train": 3 * TRAIN_PER_CLASS, "test": 3 * TEST_PER_CLASS}
    assert flopdata.describe(own / "data" / "ade20k" / "1.0.0").split_sizes == {
        "train": SEGMENTATION["training"], "validation": SEGMENTATION["validation"]}

    # the results table (the smoke size): supervised at 2 and 4 steps and scratch, fine-tuned on the segmentation
    # set; explore seed 0 for both pre-trained points, confirm seeds 1-2 for the better one; every scratch seed
    # is a confirm seed
    rows = list(csv.DictReader((own / "results.csv").open()))
    assert {r["status"] for r in rows} == {"done"} and {r["task"] for r in rows} == {"ade20k segmentation"}
    assert {(r["method"], r["pretrain_steps"], r["pretrain_dataset"]) for r in rows} == {
        ("supervised", "2", "image_folder"), ("supervised", "4", "image_folder"), ("scratch", "0", "")}
    for row in rows:
        assert 0 <= float(row["score"]) <= 100 and row["score_metric"] == "mIoU"
    explore = {(r["pretrain_steps"], r["seed"]) for r in rows if r["seed_role"] == "explore"}
    confirm = {(r["method"], r["pretrain_steps"], r["seed"]) for r in rows if r["seed_role"] == "confirm"}
    assert explore == {("2", "0"), ("4", "0")}
    (chosen,) = {steps for method, steps, _ in confirm if method == "supervised"}  # one chosen point
    assert confirm == {("supervised", chosen, "1"), ("supervised", chosen, "2")} | {
        ("scratch", "0", s) for s in ("0", "1", "2")}

    # the report: the verdict of the chosen point against scratch, on its two confirm seeds
    report = json.loads((own / "report" / "report.json").read_text())
    verdicts = report["verdicts"]
    assert [(v["method"], v["pretrain_flops"] > 0) for v in verdicts] == [("supervised", True)]
    for verdict in verdicts:
        assert verdict["task"] == "ade20k segmentation" and verdict["pretrain_dataset"] == "image_folder"
        assert verdict["n_confirm"] == 2 and verdict["n_baseline"] == 3
        assert isinstance(verdict["significant"], bool) and "effect" in verdict
    assert "pre-trained vs scratch" in (own / "report" / "report.md").read_text()
    assert (own / "report" / "report.html").stat().st_size > 0

    # the plan: a recommendation from the fitted curves of this table
    plan = subprocess.run([sys.executable, "tools/plan.py", str(own), "--budget", "1e8"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout
    assert "image_folder" in plan and ("supervised" in plan or "mae" in plan), plan

    # the captions folder: CLIP pre-trained on its captions, fine-tuned on the same segmentation set
    captions = tmp_path / "own-captions"
    directory = flopdata.resolve(captions / "data" / "image_folder")
    assert flopdata.describe(directory).split_sizes == CAPTIONED
    rows = list(csv.DictReader((captions / "results.csv").open()))
    assert [(r["method"], r["status"], r["task"]) for r in rows] == [("clip", "done", "ade20k segmentation")]
