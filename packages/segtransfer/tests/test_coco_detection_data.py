"""The detection pipeline on a `coco_instances` build (flopdata's builder) from a tiny COCO-layout fixture: polygon
and crowd-RLE masks come out as the pipeline's box-relative instance masks, boxes as x1 y1 x2 y2 output pixels."""

import json

import flopdata
import numpy as np
from PIL import Image
from segtransfer.detection import DetectionData, detection_loader

# COCO 2017's 80 category ids (ids 12, 26, 29, 30, 45, 66, 68, 69, 71, 83 are unused).
COCO_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]


def _coco_root(root, crowd, uncompressed_rle):
    rng = np.random.default_rng(1)
    (root / "annotations").mkdir(parents=True)
    categories = [{"id": i, "name": f"cat{i}", "supercategory": "x"} for i in COCO_IDS]
    for split, image_id in (("train2017", 7), ("val2017", 11)):
        name = f"{image_id:012d}.jpg"
        (root / split).mkdir()
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(root / split / name, quality=95)
        annotations = [
            {"id": 1, "image_id": image_id, "category_id": 90, "iscrowd": 0, "area": 48.0,
             "bbox": [10.0, 4.0, 8.0, 6.0], "segmentation": [[10.0, 4.0, 18.0, 4.0, 18.0, 10.0, 10.0, 10.0]]},
            {"id": 2, "image_id": image_id, "category_id": 13, "iscrowd": 1, "area": float(crowd.sum()),
             "bbox": [2.0, 5.0, 7.0, 10.0], "segmentation": uncompressed_rle(crowd)},
        ]  # fmt: skip
        images = [{"id": image_id, "file_name": name, "height": 24, "width": 32}]
        data = {"images": images, "annotations": annotations, "categories": categories}
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    return root


def test_coco_masks_through_the_detection_pipeline(tmp_path, uncompressed_rle):
    crowd = np.zeros((24, 32), np.uint8)
    crowd[5:15, 2:9] = 1
    crowd[7, 4] = 0
    root = _coco_root(tmp_path / "coco", crowd, uncompressed_rle)
    directory = flopdata.build("coco_instances", data_dir=tmp_path / "out", source=root)
    config = DetectionData(
        str(directory), batch_size=1, split="validation", train=False, image_size=64, max_objects=4
    )
    batch = next(iter(detection_loader(config)))
    assert batch["image_id"].tolist() == [11] and batch["valid"].sum() == 2  # eval keeps the crowd object
    assert batch["classes"][0].tolist() == [79, 11, -1, -1]
    np.testing.assert_allclose(batch["boxes"][0, 0], np.asarray([10, 4, 18, 10]) * 2.0)  # x1 y1 x2 y2, scale 64 / 32
    assert batch["image_hw"][0].tolist() == [48, 64]  # the 24-row image, padded below
    assert (batch["image"][0, 48:] == 0).all() and 0 <= batch["image"].min() and batch["image"].max() <= 1
    # box-relative masks: the crowd RLE inside its 7x10 box, upsampled to 56x56 (nearest): its one hole survives
    crowd_in_box = crowd[5:15, 2:9]
    assert batch["masks"][0, 1].min() == 0
    np.testing.assert_allclose((batch["masks"][0, 1] == 255).mean(), crowd_in_box.mean(), atol=0.02)
