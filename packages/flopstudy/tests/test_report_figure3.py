"""The report's Figure 3 from tools/profile_flops.py --table's JSON: per step in both conventions, per image,
closed form."""

import json

from flopstudy import figure3_figure, figure3_table, load_figure3

COSTS = [
    {"method": "dino", "model": "vit-b16", "batch": 1024, "flops_per_step": 4.9e14, "analytic_flops_per_step": 4.8e14},
    {"method": "mae", "model": "vit-b16", "batch": 4096, "flops_per_step": 2.4e14, "analytic_flops_per_step": 2.0e14,
     "mask_ratio": 0.75, "decoder_depth": 8},
    {"method": "clip", "model": "vit-l16", "batch": 4096, "flops_per_step": 1.5e15, "text_encoder": "mini"},
]


def test_figure3_table_per_step_per_image_and_conventions(tmp_path):
    path = tmp_path / "figure3.json"
    path.write_text(json.dumps({"rows": COSTS}))
    costs = load_figure3(path)
    assert [c.label for c in costs] == ["dino", "mae 75% d8", "clip (mini)"]
    whole = figure3_table(costs)
    assert whole.rows[0] == ("dino", "vit-b16", "1024", "490.0", "478.5", "1.021")  # 4.9e14 / 1024 = 478.5 GFLOPs
    assert whole.rows[1][4] == "58.6" and whole.rows[1][5] == "1.200"  # MAE per image 4x cheaper than DINO's
    assert whole.rows[2][5] == "-"  # no closed form recorded
    per_device = figure3_table(costs, convention="per-device", devices=32)
    assert per_device.rows[0][3] == "15.3" and per_device.rows[0][4] == "478.5"  # per image is the same
    assert "per device (32 devices)" in per_device.title and "whole program" in whole.title
    fig = figure3_figure(costs, convention="per-device", devices=32)
    assert len(fig.axes) == 2 and "per device (32 devices)" in fig.axes[0].get_title()
