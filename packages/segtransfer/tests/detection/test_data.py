"""Detection input pipeline and COCO ground truth on tiny TFDS directories written by the test."""

import dataclasses

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from segtransfer.detection import DetectionData, category_ids, coco_ground_truth, detection_loader


def _by_id(batch):
    return {int(i): {k: v[n] for k, v in batch.items()} for n, i in enumerate(batch["image_id"])}


def test_eval_resize_pad_and_bad_input(directory, kit):
    config = DetectionData(directory, batch_size=3, train=False, image_size=64, max_objects=4, mask_size=8,
                           pad_value=(0.5, 0.25, 0.0))
    examples = _by_id(next(iter(detection_loader(config))))
    first = examples[0]
    assert first["image"].shape == (64, 64, 3) and first["image"].dtype == np.float32
    assert first["image_hw"].tolist() == [48, 64]  # 24 x 32 resized x2, padded below
    assert first["original_hw"].tolist() == [kit.H, kit.W]
    np.testing.assert_array_equal(first["image"][48:], np.broadcast_to([0.5, 0.25, 0.0], (16, 64, 3)))  # padding
    np.testing.assert_array_equal(first["image"][0, 0], [0.0, 0.0, 0.0])  # a black pixel, not normalised
    np.testing.assert_array_equal(first["image"][10, 10], [1.0, 0.0, 0.0])  # the red rectangle
    # boxes x1 y1 x2 y2 in output pixels; the second one clipped at the right edge (xmax 1.25 -> 1.0)
    np.testing.assert_allclose(first["boxes"][:2], [[4, 6, 24, 30], [40, 12, 64, 40]])
    assert first["classes"].tolist() == [0, 1, -1, -1] and first["valid"].tolist() == [True, True, False, False]
    assert (first["masks"][:2] == 255).all() and (first["masks"][2:] == 0).all()  # rectangles fill their boxes
    assert first["dropped"] == 0 and examples[1]["dropped"] == 1  # the zero-height box
    assert examples[1]["classes"].tolist() == [1, -1, -1, -1]
    np.testing.assert_allclose(examples[1]["boxes"][0], [28, 4, 56, 44])
    assert not examples[2]["valid"].any() and examples[2]["dropped"] == 0  # no objects is fine


def test_train_lsj_keeps_boxes_on_their_objects(directory, kit):
    config = DetectionData(directory, batch_size=3, image_size=64, max_objects=4, mask_size=8, seed=3)
    iterator = iter(detection_loader(config))
    sizes, flips = set(), 0
    for _ in range(8):
        batch = next(iterator)
        for n in range(3):
            image, boxes, valid, hw = (batch[k][n] for k in ("image", "boxes", "valid", "image_hw"))
            h, w = hw.tolist()
            sizes.add((h, w))
            assert 1 <= h <= 64 and 1 <= w <= 64 and (image[h:] == 0).all() and (image[:, w:] == 0).all()
            for box, label in zip(boxes[valid], batch["classes"][n][valid], strict=True):
                x1, y1, x2, y2 = box
                assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
                colour = np.asarray(kit.COLOURS[label]) / 255.0
                inside = np.all(np.abs(image - colour) < 0.3, axis=-1)
                ys, xs = np.nonzero(inside)
                if len(ys) == 0:  # shrunk to under a pixel by a small scale: only the box is left
                    assert (x2 - x1) * (y2 - y1) < 4
                    continue
                # the object's pixels span its box, give or take the resize's blurred edge
                np.testing.assert_allclose([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], box, atol=1.6)
                flips += label == 1 and x1 < w / 2 - 1 and x2 < w * 0.9  # object 2 sits at the right unless flipped
            assert (batch["masks"][n][valid] == 255).all()  # a cropped rectangle still fills its (clipped) box
    assert len(sizes) > 4 and any(h == 64 or w == 64 for h, w in sizes)  # scales both below and above 1
    assert flips > 0


def test_too_many_objects_names_the_image_or_truncates(tmp_path, kit):
    crowded = kit.build(tmp_path / "crowded", kit.CROWDED)
    config = DetectionData(crowded, batch_size=1, train=False, image_size=32, max_objects=4)
    with pytest.raises(ValueError, match=r"tiny_detection train\[0\].*5 objects, more than max_objects=4"):
        next(iter(detection_loader(config)))
    batch = next(iter(detection_loader(dataclasses.replace(config, truncate=True))))
    assert batch["truncated"].tolist() == [1] and batch["valid"].sum() == 4
    assert batch["classes"][0].tolist() == [0, 1, 2, 3]  # the first max_objects, in record order


def test_config_errors():
    with pytest.raises(ValueError, match=r"min_scale=2.0, max_scale=1.0"):
        DetectionData("x", batch_size=1, min_scale=2.0, max_scale=1.0)
    with pytest.raises(ValueError, match=r"mask_size=0; expected a positive integer"):
        DetectionData("x", batch_size=1, mask_size=0)
    with pytest.raises(ValueError, match=r"pad_value=\(0.5, 2.0, 0.0\); expected 3 values in \[0, 1\]"):
        DetectionData("x", batch_size=1, pad_value=(0.5, 2.0, 0.0))


def test_coco_ground_truth_from_records(directory, kit):
    gt = coco_ground_truth(directory, "train")
    assert [i["id"] for i in gt["images"]] == [0, 1, 2]  # every image, the object-free one included
    assert all((i["height"], i["width"]) == (kit.H, kit.W) for i in gt["images"])
    assert category_ids(directory) == [1, 2, 3, 4, 5] and [c["id"] for c in gt["categories"]] == [1, 2, 3, 4, 5]
    first = [a for a in gt["annotations"] if a["image_id"] == 0]
    np.testing.assert_allclose(first[0]["bbox"], [2, 3, 10, 12], atol=1e-4)
    np.testing.assert_allclose(first[1]["bbox"], [20, 6, 12, 14], atol=1e-4)  # clipped to the image
    assert first[0]["category_id"] == 1 and first[0]["area"] == 120.0 and first[0]["iscrowd"] == 0
    _, masks = kit.scene(kit.SCENES[0][0])
    np.testing.assert_array_equal(mask_utils.decode(first[1]["segmentation"]), masks[1])
    assert len(gt["annotations"]) == 4  # the zero-area box stays in the ground truth (COCOeval handles it)
