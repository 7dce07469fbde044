"""The Figure 3 table's arithmetic (decoder blocks' share from the 8- and 1-layer twins), labels and markdown, on
hand-made rows (measuring the 28 real steps takes minutes: `tools/profile_flops.py --table`)."""

import pytest
from sslmethods import figure3


def _row(method, overrides, flops, analytic, model="vit-b16"):
    return {"method": method, "model": model, "batch": 4096, "overrides": overrides, "flops_per_step": flops,
            "analytic_flops_per_step": analytic}


def test_decoder_blocks_share_pairs_the_8_and_1_layer_twins():
    rows = [_row("mae", {"mask_ratio": 0.75, "decoder_depth": 8}, 1500.0, 1400.0),
            _row("mae", {"mask_ratio": 0.75, "decoder_depth": 1}, 800.0, 770.0),
            _row("mae", {"mask_ratio": 0.55, "decoder_depth": 8}, 2000.0, 1900.0),  # no 1-layer twin
            _row("mae", {"mask_ratio": 0.75, "decoder_depth": 1}, 10.0, 10.0, model="vit-l16"),
            _row("simclr", {}, 900.0, 880.0)]
    out = figure3.decoder_blocks_share(rows)
    assert out[0]["decoder_blocks_share"] == pytest.approx(8 * 100 / 1500)  # one block: (1500 - 800) / 7
    assert out[1]["decoder_blocks_share"] == pytest.approx(100 / 800)
    assert out[0]["analytic_decoder_blocks_share"] == pytest.approx(8 * 90 / 1400)
    assert out[1]["analytic_decoder_blocks_share"] == pytest.approx(90 / 770)
    assert all("decoder_blocks_share" not in r for r in out[2:])
    table = figure3.markdown(out, 12.0)
    assert "| mae mask_ratio=0.75 decoder_depth=8 | vit-b16 | 4096 | 0.0 | 1.071 | 51.4% / 53.3% |" in table
    assert "| simclr | vit-b16 | 4096 | 0.0 | 1.023 |  |" in table and "in 12 s. FLOPs are XLA's count" in table
    assert "TFLOPs/step (whole program)" in table and "`whole_program`" in table  # the convention is stated


def test_rows_cover_the_studys_figure():
    labels = [figure3.label({"method": m, "overrides": o}) for m, o in figure3.ROWS]
    assert labels[:6] == ["supervised", "clip text_encoder=text-mini", "clip text_encoder=text-medium", "simclr",
                          "byol", "dino"]
    assert len(labels) == 14 and len(set(labels)) == 14 and labels[-1] == "mae mask_ratio=0.85 decoder_depth=1"
