"""The report's headline (`flopstudy.report.summary.headline`, report.json ``headline``): the verdict and crossover
sentences, each with a sentence saying why where there is none, in the summary's own words."""

from flopstudy.analysis.study import analyse
from flopstudy.report.summary import headline, summary_lines


def _scratch(make_row, backbone="vit-b16", role=None):
    return [make_row(method="scratch", pretrain_dataset="", pretrain_steps=0, pretrain_flops=0.0, backbone=backbone,
                     seed=s, score=20.0 + s, seed_role=role) for s in (0, 1, 2)]


def test_without_confirm_seeds_or_fits_the_headline_says_why(make_row):
    # one budget per curve (nothing to fit) and every pre-trained seed an explore seed (nothing to compare)
    rows = _scratch(make_row, role="confirm") + [make_row(seed=s, score=30.0 + s, seed_role="explore") for s in (0, 1)]
    analysis = analyse(rows, n_boot=20)
    assert analysis.verdicts == () and analysis.crossovers == ()
    assert headline(analysis) == {
        "verdicts": ["No verdict vs scratch: no pre-trained point was compared with scratch on confirm seeds (a sweep "
                     "runs them with a scratch baseline and config.confirm_seeds > 0)."],
        "crossovers": ["No backbone crossover: no curve has 2 measured budgets to fit."]}
    # the summary already says there is nothing to fit, and gives no verdict it does not have
    assert not any(line.startswith(("No backbone crossover", "No verdict")) for line in summary_lines(analysis))


def test_fitted_backbones_that_share_no_curve_family_are_named(make_row):
    rows = _scratch(make_row)
    for method, backbone in (("mae", "vit-b16"), ("simclr", "vit-l16")):
        rows += [make_row(method=method, backbone=backbone, pretrain_steps=100 * 4**k, pretrain_flops=1e18 * 4**k,
                          seed=0, score=30.0 + 3 * k) for k in range(3)]
    analysis = analyse(rows, n_boot=20)
    (line,) = headline(analysis)["crossovers"]
    assert line == ("No backbone crossover: of the fitted backbones (vit-b16, vit-l16), no two share a method, "
                    "pre-training set and task.")
    assert line in summary_lines(analysis)


def test_crossovers_are_the_reports_sentences(make_row):
    rows = _scratch(make_row)
    for backbone, slope, start in (("vit-b16", 1.0, 40.0), ("vit-l16", 4.0, 36.0)):
        rows += [make_row(backbone=backbone, pretrain_steps=100 * 4**k, pretrain_flops=1e18 * 4**k, seed=0,
                          score=start + slope * k) for k in range(3)]
    analysis = analyse(rows, n_boot=50)
    lines = headline(analysis)["crossovers"]
    assert lines == [f"{c.describe()}." for c in analysis.crossovers] and len(lines) == 1
    assert lines[0].startswith("mae on i1k -> seg: vit-l16 overtakes vit-b16 at ")
    assert lines[0] in summary_lines(analysis)
