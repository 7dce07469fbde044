"""`example_memory_floor`: the float32 image plus one float32 (tokens x width) activation per ViT block, counted
by hand for the study's ViT-B/16 at 224 px and an NFNet (image only)."""

import vitcore


def test_vit_b16_floor_is_the_image_and_one_activation_per_block():
    image = 224 * 224 * 3 * 4  # 602,112 bytes
    blocks = 12 * (14 * 14 + 1) * 768 * 4  # 12 blocks x 197 tokens x 768 channels x 4 bytes = 7,262,208
    assert vitcore.example_memory_floor(vitcore.get_config("vit-b16")) == image + blocks == 7_864_320


def test_floor_follows_the_image_size_and_counts_only_the_image_for_an_nfnet():
    vit = vitcore.get_config("vit-b16", image_size=448)
    assert vitcore.example_memory_floor(vit) == 448 * 448 * 12 + 12 * (28 * 28 + 1) * 768 * 4
    nfnet = vitcore.get_config("nfnet-f0")
    height, width = vitcore.image_hw(nfnet.image_size)
    assert vitcore.example_memory_floor(nfnet) == height * width * 3 * 4
