"""ade20k / coco_instances / image_folder builders on tiny fixtures in the real on-disk layouts."""

import json

import flopdata
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

# COCO 2017's 80 category ids (ids 12, 26, 29, 30, 45, 66, 68, 69, 71, 83 are unused).
COCO_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]


def _jpeg(path, rng, height, width):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path, quality=95)


@pytest.fixture()
def ade_root(tmp_path):
    root = tmp_path / "ADEChallengeData2016"
    rng = np.random.default_rng(0)
    masks = {}
    splits = (
        ("training", ["ADE_train_00000001", "ADE_train_00000002"]),
        ("validation", ["ADE_val_00000001"]),
    )
    for folder, stems in splits:
        for stem in stems:
            _jpeg(root / "images" / folder / f"{stem}.jpg", rng, 20, 30)
            mask = rng.integers(0, 151, (20, 30)).astype(np.uint8)
            mask[0, :3] = [0, 1, 150]
            (root / "annotations" / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask).save(root / "annotations" / folder / f"{stem}.png")
            masks[stem] = mask
    return root, masks


def test_ade20k_reduce_zero_label(ade_root, tmp_path):
    root, masks = ade_root
    directory = flopdata.build("ade20k", data_dir=tmp_path / "out", source=root)
    builder = tfds.builder_from_directory(str(directory))
    assert builder.info.splits["train"].num_examples == 2
    source = builder.as_data_source("validation")
    example = source[0]
    assert example["file_name"].decode() == "ADE_val_00000001.jpg"
    raw = masks["ADE_val_00000001"].astype(np.int64)
    expected = np.where(raw == 0, 255, raw - 1)  # mmseg reduce_zero_label
    np.testing.assert_array_equal(example["segmentation_mask"][..., 0], expected)
    assert list(example["segmentation_mask"][0, :3, 0]) == [255, 0, 149]
    assert example["image"].shape == (20, 30, 3)


def test_ade20k_errors_name_the_file(ade_root, tmp_path):
    root, _ = ade_root
    bad = root / "annotations" / "training" / "ADE_train_00000002.png"
    Image.fromarray(np.full((20, 30), 151, np.uint8)).save(bad)
    with pytest.raises(ValueError, match=r"ADE_train_00000002.png.*\[151\]"):
        flopdata.build("ade20k", data_dir=tmp_path / "a", source=root)
    bad.unlink()
    with pytest.raises(ValueError, match="has no annotation"):
        flopdata.build("ade20k", data_dir=tmp_path / "b", source=root)
    (root / "images" / "training" / "ADE_train_00000002.jpg").write_bytes(b"not a jpeg")
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(bad)
    with pytest.raises(ValueError, match="corrupt or unreadable image.*ADE_train_00000002.jpg"):
        flopdata.build("ade20k", data_dir=tmp_path / "c", source=root)


@pytest.fixture()
def coco_root(tmp_path, uncompressed_rle):
    root = tmp_path / "coco"
    rng = np.random.default_rng(1)
    (root / "annotations").mkdir(parents=True)
    categories = [{"id": i, "name": f"cat{i}", "supercategory": "x"} for i in COCO_IDS]
    crowd = np.zeros((24, 32), np.uint8)
    crowd[5:15, 2:9] = 1
    crowd[7, 4] = 0
    for split, ids in (("train2017", [7, 3]), ("val2017", [11])):
        images, annotations = [], []
        for image_id in ids:
            name = f"{image_id:012d}.jpg"
            _jpeg(root / split / name, rng, 24, 32)
            images.append({"id": image_id, "file_name": name, "height": 24, "width": 32})
        polygon = [[10.0, 4.0, 18.0, 4.0, 18.0, 10.0, 10.0, 10.0]]
        annotations.append(
            {"id": 1, "image_id": ids[0], "category_id": 90, "iscrowd": 0, "area": 48.0,
             "bbox": [10.0, 4.0, 8.0, 6.0], "segmentation": polygon}
        )  # fmt: skip
        annotations.append(
            {"id": 2, "image_id": ids[0], "category_id": 13, "iscrowd": 1, "area": float(crowd.sum()),
             "bbox": [2.0, 5.0, 7.0, 10.0], "segmentation": uncompressed_rle(crowd)}
        )  # fmt: skip
        data = {"images": images, "annotations": annotations, "categories": categories}
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    return root, crowd


def test_coco_labels_boxes_and_masks(coco_root, tmp_path):
    root, crowd = coco_root
    directory = flopdata.build("coco_instances", data_dir=tmp_path / "out", source=root)
    builder = tfds.builder_from_directory(str(directory))
    assert builder.info.metadata["coco_category_ids"] == COCO_IDS
    assert builder.info.features["objects"]["label"].num_classes == 80
    train = builder.as_data_source("train")
    assert len(train) == 2
    first = [train[i] for i in range(2) if train[i]["image/id"] == 7][0]
    objects = first["objects"]
    assert list(objects["label"]) == [79, 11]  # COCO id 90 (last of 80) and id 13 (12th) -> contiguous
    assert list(objects["category_id"]) == [90, 13]
    assert list(objects["is_crowd"]) == [False, True]
    np.testing.assert_allclose(objects["bbox"][0], [4 / 24, 10 / 32, 10 / 24, 18 / 32], atol=1e-6)
    from pycocotools import mask as mask_utils

    decoded = [mask_utils.decode({"size": [24, 32], "counts": m}) for m in objects["mask"]]
    np.testing.assert_array_equal(decoded[1], crowd)  # RLE round trip is exact
    polygon = decoded[0]
    assert polygon[:4].sum() == 0 and polygon[11:].sum() == 0 and polygon[:, :10].sum() == 0
    assert 40 <= polygon.sum() <= 63  # the 8x6 rectangle, give or take its border row/column


def test_coco_errors(coco_root, tmp_path):
    root, _ = coco_root
    path = root / "annotations" / "instances_val2017.json"
    data = json.loads(path.read_text())
    data["annotations"][0]["category_id"] = 12
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"000000000011.jpg annotation id 1: category_id 12"):
        flopdata.build("coco_instances", data_dir=tmp_path / "a", source=root)
    path.unlink()
    with pytest.raises(ValueError, match="instances_val2017.json.*does not exist"):
        flopdata.build("coco_instances", data_dir=tmp_path / "b", source=root)


def test_coco_boxes_without_area_are_dropped_with_a_count_and_negative_ones_rejected(coco_root, tmp_path,
                                                                                     capsys):
    root, crowd = coco_root
    path = root / "annotations" / "instances_train2017.json"
    data = json.loads(path.read_text())
    for image_id, box in ((7, [3.0, 3.0, 0.0, 5.0]), (3, [3.0, 3.0, 5.0, 0.0])):  # zero width, zero height
        data["annotations"].append({"id": 10 + image_id, "image_id": image_id, "category_id": 90, "iscrowd": 0,
                                    "area": 0.0, "bbox": box, "segmentation": [[3.0, 3.0, 3.0, 8.0, 3.0, 3.0]]})
    path.write_text(json.dumps(data))
    directory = flopdata.build("coco_instances", data_dir=tmp_path / "out", source=root)
    err = capsys.readouterr().err
    assert (f"warning: {path}: dropped 2 annotation(s) with a zero-width or zero-height bbox (e.g. "
            "000000000003.jpg annotation id 13)") in err
    train = tfds.builder_from_directory(str(directory)).as_data_source("train")
    by_id = {int(train[i]["image/id"]): train[i]["objects"] for i in range(len(train))}
    assert list(by_id[7]["category_id"]) == [90, 13] and len(by_id[3]["category_id"]) == 0  # the others stay
    data["annotations"][-1]["bbox"] = [3.0, 3.0, 5.0, -1.0]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"000000000003.jpg annotation id 13: bbox \[3.0, 3.0, 5.0, -1.0\] is "
                                         "outside the 32x24 image"):
        flopdata.build("coco_instances", data_dir=tmp_path / "b", source=root)


def test_image_folder_csv_and_jsonl(tmp_path):
    rng = np.random.default_rng(2)
    source = tmp_path / "mine"
    for i in range(3):
        _jpeg(source / "img" / f"{i}.jpg", rng, 10 + i, 12)
    Image.fromarray(rng.integers(0, 256, (9, 9), dtype=np.uint8)).save(source / "img" / "gray.png")
    (source / "train.csv").write_text(
        "image,label,labels,caption\nimg/0.jpg,cat,cat|dog,a cat\nimg/1.jpg,dog,dog,a dog\n"
        "img/gray.png,cat,a|b|c|d|e|f|g|h|i|cat,many\n"
    )
    row = {"image": "img/2.jpg", "label": "dog", "labels": ["dog"], "caption": "val"}
    (source / "validation.jsonl").write_text(json.dumps(row) + "\n")
    directory = flopdata.build("image_folder", data_dir=tmp_path / "out", source=source)
    builder = tfds.builder_from_directory(str(directory))
    names = builder.info.features["label"].names
    assert names == sorted({"cat", "dog", *"abcdefghi"})
    train = builder.as_data_source("train")
    rows = sorted((train[i] for i in range(3)), key=lambda r: r["file_name"])
    assert [r["file_name"].decode() for r in rows] == ["img/0.jpg", "img/1.jpg", "img/gray.png"]
    assert [names[int(v)] for v in rows[0]["labels"]] == ["cat", "dog"]
    assert len(rows[2]["labels"]) == 8 and rows[2]["image"].shape == (9, 9, 3)  # first 8 kept; gray -> RGB
    assert rows[1]["caption"].decode() == "a dog"
    assert builder.as_data_source("validation")[0]["image"].shape == (12, 12, 3)
    (source / "img" / "1.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(ValueError, match=r"train row 2.*img/1.jpg"):
        flopdata.build("image_folder", data_dir=tmp_path / "again", source=source)


def _class_folders(root, rng, counts):
    """``root/SPLIT/CLASS/i.JPEG`` (ImageNet's upper-case suffix) for {split: {class: count}}; returns the
    pixels written per relative path."""
    pixels = {}
    for split, classes in counts.items():
        for name, count in classes.items():
            for i in range(count):
                path = root / split / name / f"{i}.JPEG"
                _jpeg(path, rng, 8 + i, 10)
                pixels[f"{split}/{name}/{i}.JPEG"] = np.asarray(Image.open(path).convert("RGB"))
    return pixels


def test_image_folder_class_folders(tmp_path):
    rng = np.random.default_rng(3)
    source = tmp_path / "imagenet_like"
    pixels = _class_folders(source, rng, {"train": {"dog": 3, "cat": 1, "emu": 2}, "test": {"cat": 1, "dog": 1}})
    (source / "train" / "dog" / "notes.txt").write_text("not an image")  # other files are not read
    (source / ".cache").mkdir()  # nor hidden folders
    directory = flopdata.build("image_folder", data_dir=tmp_path / "out", source=source)
    builder = tfds.builder_from_directory(str(directory))
    names = builder.info.features["label"].names
    assert names == ["cat", "dog", "emu"]  # sorted union over the splits
    assert {s: builder.info.splits[s].num_examples for s in ("train", "test")} == {"train": 6, "test": 2}
    assert set(builder.info.features.keys()) == {"image", "file_name", "label"}
    for split in ("train", "test"):
        data = builder.as_data_source(split)
        for example in (data[i] for i in range(len(data))):
            file_name = example["file_name"].decode()
            assert file_name.split("/")[0] == split and names[int(example["label"])] == file_name.split("/")[1]
            np.testing.assert_array_equal(example["image"], pixels[file_name])  # the JPEG's bytes, kept as they are
    # the same folder and options again: the build is reused (its options are recorded); other options are refused
    assert flopdata.build("image_folder", data_dir=tmp_path / "out", source=source) == directory
    with pytest.raises(ValueError, match="was built with options"):
        flopdata.build("image_folder", data_dir=tmp_path / "out", source=source, num_examples=2)


def test_image_folder_class_folders_interleave_classes_for_num_examples(tmp_path):
    from flopdata.builders.image_folder import class_folder_tables

    _class_folders(tmp_path, np.random.default_rng(4), {"train": {"a": 3, "b": 1, "c": 2}})
    rows = class_folder_tables(tmp_path)["train"]
    # first image of every class, then the second, ...: a prefix of N rows holds about N / classes of each
    assert [r["image"] for r in rows] == ["train/a/0.JPEG", "train/b/0.JPEG", "train/c/0.JPEG", "train/a/1.JPEG",
                                          "train/c/1.JPEG", "train/a/2.JPEG"]
    assert [r["label"] for r in rows] == ["a", "b", "c", "a", "c", "a"]


@pytest.mark.parametrize(("layout", "message"), [
    ({"train/x.jpg": None}, r"holds images outside class folders \(x.jpg"),
    ({"train/cat/notes.txt": "text"}, r"class folder .*cat' holds no .jpg/.jpeg/.png image"),
    ({"train/": None}, r"split folder .*train' holds no class folders"),
    ({"readme.md": "text"}, r"no SPLIT.csv or SPLIT.jsonl table and no SPLIT/CLASS/ image folders"),
])
def test_image_folder_class_folder_errors_name_the_folder(tmp_path, layout, message):
    source = tmp_path / "bad"
    source.mkdir()
    for relative, text in layout.items():
        path = source / relative
        if relative.endswith("/"):
            path.mkdir(parents=True)
        elif text is None:
            _jpeg(path, np.random.default_rng(5), 8, 8)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    with pytest.raises(ValueError, match=message):
        flopdata.check_build("image_folder", data_dir=tmp_path / "out", source=source)
    assert not (tmp_path / "out").exists()


def test_ade20k_png_images_and_check_build_writes_nothing(ade_root, tmp_path):
    root, masks = ade_root
    path = root / "images" / "validation" / "ADE_val_00000001.jpg"
    pixels = np.asarray(Image.open(path).convert("RGB"))
    Image.fromarray(pixels).save(path.with_suffix(".png"))  # a user's own set may hold PNG images
    path.unlink()
    flopdata.check_build("ade20k", data_dir=tmp_path / "out", source=root)
    assert not (tmp_path / "out").exists()
    directory = flopdata.build("ade20k", data_dir=tmp_path / "out", source=root)
    example = tfds.builder_from_directory(str(directory)).as_data_source("validation")[0]
    assert example["file_name"].decode() == "ADE_val_00000001.png"
    np.testing.assert_array_equal(example["image"], pixels)  # PNG: lossless
    raw = masks["ADE_val_00000001"].astype(np.int64)
    np.testing.assert_array_equal(example["segmentation_mask"][..., 0], np.where(raw == 0, 255, raw - 1))
    flopdata.check_build("ade20k", data_dir=tmp_path / "out", source=root)  # built with these options: fine
    with pytest.raises(ValueError, match="was built with options"):
        flopdata.check_build("ade20k", data_dir=tmp_path / "out", source=root, num_examples=1)


@pytest.mark.parametrize(("change", "message"), [
    (lambda root: (root / "annotations" / "training" / "ADE_train_00000002.png").unlink(),
     r"ADE_train_00000002.jpg' has no annotation"),
    (lambda root: [p.unlink() for p in (root / "images" / "validation").iterdir()],
     r"ADE20K split 'validation': no .jpg/.jpeg/.png files in"),
    (lambda root: root.rename(root.with_name("elsewhere")), r"ade20k: source '.*' is not a folder"),
])
def test_ade20k_check_build_names_what_is_missing(ade_root, tmp_path, change, message):
    root, _ = ade_root
    change(root)
    with pytest.raises(ValueError, match=message):
        flopdata.check_build("ade20k", data_dir=tmp_path / "out", source=root)
    assert not (tmp_path / "out").exists()
