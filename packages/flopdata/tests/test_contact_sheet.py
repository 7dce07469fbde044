"""flopdata.contact_sheet on a tiny fmnist_scenes build from fake idx files."""

import flopdata
import numpy as np
import pytest
from flopdata.contact_sheet import PALETTE


@pytest.fixture(scope="module")
def scenes(fake_source, tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    return flopdata.build("fmnist_scenes", data_dir=root, source=fake_source, num_examples=6, seed=1, image_size=32)


def test_panels_are_the_image_and_its_coloured_mask(scenes):
    sheet = np.asarray(flopdata.contact_sheet(scenes, count=2, scale=1))
    assert sheet.shape == (3 * 32 + 2 * 2, 2 * 32 + 4, 3)
    source = flopdata.RecordSource(scenes, "train")
    for column in range(2):
        where = source.describe(column)
        fields = flopdata.parse_example(source[column]["record"], where=where)
        image = flopdata.decode_rgb(fields["image"][0], where=where)
        semantic = flopdata.decode_gray(fields["segmentation_mask"][0], where=where)
        left = column * (32 + 4)
        np.testing.assert_array_equal(sheet[:32, left : left + 32], image)
        expected = np.zeros_like(image)
        expected[semantic > 0] = PALETTE[semantic[semantic > 0] - 1]  # class k is mask value k + 1
        np.testing.assert_array_equal(sheet[34:66, left : left + 32], expected)
        # the third panel draws outlines and boxes over the scene: it differs from the scene
        assert (sheet[68:100, left : left + 32] != image).any()


def test_write_is_atomic_and_errors_name_the_problem(scenes, fake_source, tmp_path):
    out = flopdata.write_contact_sheet(scenes, tmp_path / "sheet.png", count=1, scale=2)
    assert out.read_bytes()[:4] == b"\x89PNG" and [p.name for p in tmp_path.iterdir()] == ["sheet.png"]
    with pytest.raises(ValueError, match=r"count=7 but .* train has 6 examples"):
        flopdata.write_contact_sheet(scenes, tmp_path / "other.png", count=7)
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.png"]
    objects = flopdata.build("fmnist_objects", data_dir=tmp_path / "o", source=fake_source, num_examples=6)
    with pytest.raises(ValueError, match=r"lacks features \['segmentation_mask', 'objects'\] for a contact sheet"):
        flopdata.contact_sheet(objects)
