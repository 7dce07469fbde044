"""The guides run: every ```bash block of docs/guide.md and docs/beyond.md and of README.md's quick start (the
blocks under a heading containing "Quick start") is executed at tiny size, so no guide can rot.

The convention a guide follows is in tests/doc_blocks.py (and docs/guide.md's introduction): an HTML comment
directly above a block, ``<!-- tiny: "old" -> "new"; ... -->``, shrinks it with plain-text substitutions (each old
text must occur in the block); ``<!-- no-run: reason -->`` skips it (SLURM, several GPUs, GPU-only installs);
``pip install`` lines are left out by rule (tests/test_install_lines.py runs each in a fresh venv). Blocks of a
file run in order, from the repository root, with the environment's ``python`` and ``$FLOPWISE_TMP``, a
temporary folder for the file's outputs. docs/own-data.md is run by tests/test_own_data.py (it writes image
fixtures first); the registry `doc_blocks.RUN_BY` says which test runs which file, and a test here checks that
every docs/*.md file with bash blocks is in it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import doc_blocks
import pytest
from doc_blocks import (
    RUN_BY,
    RUNNABLE,
    DocError,
    fenced_blocks,
    run_blocks,
    run_doc,
    runnable_blocks,
    script_for,
    without_install_lines,
)

ROOT = Path(__file__).resolve().parents[1]
FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
QUICK_START = "Quick start"  # README.md's blocks that run: those under a heading containing this
THIS = "tests/test_guides.py"


# ---- the harness itself, on small Markdown files (bash only: seconds) ------------------------------------------

def _doc(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "guide.md"
    path.write_text(text)
    return path


FENCE = "```"


def test_blocks_run_in_order_shrunk_with_the_environments_python_and_a_temp_dir(tmp_path):
    doc = _doc(tmp_path, f"""# A guide
Some prose.

<!-- tiny: "--steps 1000" -> "--steps
   2"; "runs/x" -> "$FLOPWISE_TMP/x" -->
{FENCE}bash
pip install packages/flopcli \\
    packages/flopdata      # left out by rule
python -c 'import sys; print(sys.executable)' > "$FLOPWISE_TMP/python"
mkdir -p runs/x && echo --steps 1000 > runs/x/args   # a doc command writing into the checkout, redirected
{FENCE}
<!-- no-run: needs a SLURM login node -->
{FENCE}bash
exit 7
{FENCE}
{FENCE}python
raise SystemExit(3)  # not bash: not run
{FENCE}
{FENCE}bash
cat "$FLOPWISE_TMP/x/args"; pwd; echo "$GREETING"
{FENCE}
""")
    out = tmp_path / "out"
    runs = run_doc(doc, out, env={"GREETING": "hello"})
    assert [(r.block.line, r.script is None) for r in runs] == [(6, False), (13, True), (19, False)]
    assert "pip install" not in runs[0].script and "packages/flopdata" not in runs[0].script
    assert (out / "python").read_text().strip() == sys.executable  # `python` is this environment's
    assert runs[2].output.splitlines() == ["--steps 2", str(ROOT), "hello"]  # block 1's file, from the root
    # run_blocks: the scripts that ran
    assert run_blocks(doc, tmp_path / "again", {"GREETING": "hi"}) == [runs[0].script, runs[2].script]


@pytest.mark.parametrize(("text", "message"), [
    (f'<!-- tiny: "--steps 2000" -> "--steps 2" -->\n{FENCE}bash\necho --steps 1000\n{FENCE}\n',
     "'--steps 2000' is not in the block"),
    (f"<!-- no-run: -->\n{FENCE}bash\necho hi\n{FENCE}\n", "needs a reason"),
    (f'<!-- tiny: "a" -> "b"\n\n{FENCE}bash\necho a\n{FENCE}\n', "not directly above"),
    (f'<!-- tiny: "a" -> "b" -->\n\n{FENCE}bash\necho a\n{FENCE}\n', "not directly above"),
    (f'<!-- tiny: "a" -> "b" -->\n{FENCE}python\nprint("a")\n{FENCE}\n', "not directly above"),
    (f'<!-- tiny: a -> b -->\n{FENCE}bash\necho a\n{FENCE}\n', "cannot read the tiny substitutions"),
    (f'<!-- tiny -->\n{FENCE}bash\necho a\n{FENCE}\n', "malformed comment"),
    (f'<!-- tiny: "a\\q" -> "b" -->\n{FENCE}bash\necho a\n{FENCE}\n', "does not read as JSON"),
    (f"{FENCE}bash\necho a\n", "never closed"),
])
def test_stale_or_malformed_comments_fail_before_anything_runs(tmp_path, text, message):
    doc = _doc(tmp_path, f"{FENCE}bash\ntouch \"$FLOPWISE_TMP/ran\"\n{FENCE}\n\n{text}")
    with pytest.raises(DocError, match=message):
        run_blocks(doc, tmp_path / "out")
    assert not (tmp_path / "out" / "ran").exists()


@pytest.mark.parametrize("script", ["echo before; false; echo after", "echo before; false | cat",
                                    "echo before; echo $NOT_SET_ANYWHERE"])
def test_a_failing_block_fails_with_its_text_and_output(tmp_path, script):
    doc = _doc(tmp_path, f"# G\n\n{FENCE}bash\necho fine\n{FENCE}\n\n{FENCE}bash\n{script}\n{FENCE}\n")
    with pytest.raises(DocError) as caught:
        run_blocks(doc, tmp_path / "out")
    message = str(caught.value)
    assert "guide.md:7: the block exited with status" in message and script in message
    assert "before" in message.split("--- output:")[1] and "after" not in message.split("--- output:")[1]


def test_a_block_that_writes_into_the_checkout_fails(tmp_path, monkeypatch):
    checkout = tmp_path / "checkout"  # a stand-in for the repository root, so the test writes only under tmp_path
    (checkout / "runs").mkdir(parents=True)
    monkeypatch.setattr(doc_blocks, "ROOT", checkout)
    doc = _doc(tmp_path, f'{FENCE}bash\necho ok > "$FLOPWISE_TMP/x"\n{FENCE}\n{FENCE}bash\nmkdir runs/mine\n{FENCE}\n')
    with pytest.raises(DocError, match=r"guide.md:4: the block wrote \['runs/mine'\] into the checkout"):
        run_blocks(doc, tmp_path / "out")
    assert (checkout / "runs" / "mine").is_dir() and (tmp_path / "out" / "x").is_file()


def test_quick_start_selection_keeps_blocks_under_the_heading_and_its_subsections(tmp_path):
    doc = _doc(tmp_path, f"""# Tool
{FENCE}bash
echo top
{FENCE}
## Quick start
{FENCE}bash
echo one
{FENCE}
### Your own data
{FENCE}sh
echo two
{FENCE}
## Install
{FENCE}bash
echo three
{FENCE}
""")
    assert [b.text for b in runnable_blocks(doc, under=QUICK_START)] == ["echo one", "echo two"]
    assert [b.text for b in runnable_blocks(doc)] == ["echo top", "echo one", "echo two", "echo three"]


# ---- every guide is run by some test, and every comment in them is current ------------------------------------

def _guides_with_bash_blocks() -> list[str]:
    """Every Markdown file (README, docs, package READMEs) with a bash block that runs more than pip installs."""
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(ROOT.glob("packages/*/README.md"))]
    return [str(d.relative_to(ROOT)) for d in docs
            if any(b.lang in RUNNABLE and without_install_lines(b.text).strip() for b in fenced_blocks(d))]


def test_every_guide_with_bash_blocks_is_run_by_a_test():
    guides = _guides_with_bash_blocks()
    assert {"README.md", "docs/guide.md", "packages/segtransfer/README.md"} <= set(guides)
    assert "packages/flopcli/README.md" not in guides  # pip lines only: tests/test_install_lines.py runs those
    for guide in guides:
        assert guide in RUN_BY, f"{guide} has ```bash blocks that no test runs: add it to doc_blocks.RUN_BY and " \
                                "call run_blocks on it from a test"
    for guide, test in RUN_BY.items():
        if (ROOT / guide).is_file():
            source = (ROOT / test).read_text()
            assert ("run_blocks(" in source or "run_doc(" in source) and f'"{guide}"' in source, \
                f"{test} does not run {guide}"
    # what this file runs has blocks that run, so the tests below cannot cover nothing
    assert any(script_for(b) is not None for b in runnable_blocks(ROOT / "docs/guide.md"))
    assert runnable_blocks(ROOT / "README.md", under=QUICK_START), "README.md has no bash block under a quick start"


@pytest.mark.parametrize("guide", [g for g in RUN_BY if (ROOT / g).is_file()])
def test_every_tiny_comment_parses_and_matches_its_block(guide):
    for block in runnable_blocks(ROOT / guide):
        script_for(block)  # raises on a stale or malformed comment


# ---- the guides, at tiny size ----------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(not FMNIST.exists(), reason="Fashion-MNIST (Debian dataset-fashion-mnist) is not installed")
def test_user_guide_runs(tmp_path):
    printed = "\n".join(r.output for r in run_doc("docs/guide.md", tmp_path))
    assert '"flops_per_step"' in printed  # step 1: the profile's JSON
    report = json.loads((tmp_path / "guide" / "report" / "report.json").read_text())
    assert {r["method"] for r in report["rows"]} == {"clip", "scratch"} and report["verdicts"]
    assert (tmp_path / "guide" / "report" / "report.html").is_file()
    assert "best: pre-train" in printed  # step 4: the plan
    assert (tmp_path / "simsiam" / "summary.json").is_file()  # section 2: the composed method pre-trained


@pytest.mark.slow
def test_beyond_the_study_flop_measurements_run(tmp_path):
    run_blocks("docs/beyond.md", tmp_path)
    for name in ("convnets_paper_flops.json", "prepretrain_paper_flops.json"):
        rows = json.loads((tmp_path / name).read_text())["rows"]
        assert rows and all(r["flops_per_step"] > 0 for r in rows)


@pytest.mark.slow
def test_scale_out_cpu_twins_run(tmp_path):
    run_blocks("docs/scale-out.md", tmp_path)  # the GPU and SLURM blocks are no-run; their CPU twins run
    for name in ("scale-cpu4", "scale-2hosts"):
        assert json.loads((tmp_path / name / "summary.json").read_text())["devices"] == 4


def test_the_command_list_is_marked_not_run(tmp_path):
    assert run_blocks("docs/commands.md", tmp_path) == []  # a reference list; each command has its own tests


@pytest.mark.slow
def test_readme_quick_start_runs(tmp_path):
    assert run_doc("README.md", tmp_path, under=QUICK_START)


@pytest.mark.slow
@pytest.mark.skipif(not FMNIST.exists(), reason="Fashion-MNIST (Debian dataset-fashion-mnist) is not installed")
def test_segtransfer_readme_detection_walkthrough_runs(tmp_path):
    # the README builds its sets under data/; here they go to a temporary data dir (FLOPWISE_DATA)
    run_blocks("packages/segtransfer/README.md", tmp_path, env={"FLOPWISE_DATA": str(tmp_path / "data")})
    report = json.loads((tmp_path / "exp" / "report" / "report.json").read_text())
    assert {r["method"] for r in report["rows"]} >= {"supervised", "scratch"}


def test_sslmethods_readme_profiles_the_example_method_by_import_path(tmp_path):
    printed = "\n".join(r.output for r in run_doc("packages/sslmethods/README.md", tmp_path))
    assert json.loads(printed[printed.index("{"):])["flops_per_step"] > 0
