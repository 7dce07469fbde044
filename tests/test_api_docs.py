"""The API reference (pdoc, from the docstrings) builds for every package without a warning, and documents every
exported name. `make docs` runs the same command into docs/api/."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p.parent.name for p in ROOT.glob("packages/*/pyproject.toml"))


@pytest.mark.slow  # imports every module of every package: ~25 s
def test_pdoc_builds_every_package_without_warnings(tmp_path):
    env = os.environ | {"JAX_PLATFORMS": "cpu"}
    run = subprocess.run([sys.executable, "-m", "pdoc", *PACKAGES, "-o", str(tmp_path)], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    problems = [line for line in (run.stdout + run.stderr).splitlines() if re.search(r"warn|error", line, re.I)]
    assert not problems, "\n".join(problems)
    for package in PACKAGES:
        page = (tmp_path / f"{package}.html").read_text()
        exported = __import__(package).__all__
        missing = [name for name in exported if f'id="{name}"' not in page and f">{name}<" not in page]
        assert not missing, f"{package}.html does not document {missing}"


def test_make_docs_covers_every_package():
    makefile = (ROOT / "Makefile").read_text()
    listed = re.search(r"^PKGS := (.*)$", makefile, re.M).group(1).split()
    assert sorted(listed) == PACKAGES
    assert re.search(r"^docs:.*\n\t.*-m pdoc \$\(PKGS\) -o docs/api", makefile, re.M), "make docs runs pdoc"
    assert "docs/api/" in (ROOT / ".gitignore").read_text()  # generated, never committed
