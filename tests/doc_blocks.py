"""Runs the ```bash blocks of a document as a test, at tiny size.

A comment line directly above a block changes how it runs:
- ``<!-- tiny: "old" -> "new"; "old2" -> "new2" -->``: plain-text substitutions applied to the block, in order,
  before it runs (smaller steps, budgets, paths under ``$FLOPWISE_TMP``);
- ``<!-- no-run: reason -->``: the block is not run (SLURM- or GPU-only lines).

Blocks of one file run in order, each with ``bash -e`` in the repository root, with this interpreter's folder
first on PATH (``python`` is the test's) and ``FLOPWISE_TMP`` naming ``tmp_dir``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_TINY = re.compile(r"^<!-- tiny: (.*) -->$")
_PAIR = re.compile(r'"([^"]*)"\s*->\s*"([^"]*)"')
_NO_RUN = re.compile(r"^<!-- no-run: .+ -->$")


def bash_blocks(text: str) -> list[tuple[str, str | None]]:
    """The ```bash blocks of ``text`` with the comment line directly above each (None when there is none)."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            above = lines[i - 1].strip() if i and lines[i - 1].strip().startswith("<!--") else None
            blocks.append(("\n".join(lines[i + 1:end]), above))
            i = end
        i += 1
    return blocks


def tiny_block(block: str, comment: str | None) -> str | None:
    """``block`` with its tiny substitutions applied; None for a no-run block. A substitution whose text is not
    in the block is an error (the document changed under its comment)."""
    if comment is None:
        return block
    if _NO_RUN.match(comment):
        return None
    match = _TINY.match(comment)
    if match is None:
        raise ValueError(f"unrecognised comment above a bash block: {comment}")
    for old, new in _PAIR.findall(match.group(1)):
        if old not in block:
            raise ValueError(f"tiny substitution {old!r} is not in the block:\n{block}")
        block = block.replace(old, new)
    return block


def run_blocks(doc_path: str | Path, tmp_dir: str | Path, env: Mapping[str, str] | None = None) -> list[str]:
    """Runs every bash block of ``doc_path`` (relative to the repository root) in order; returns the commands
    run. AssertionError with the block and its output when one fails."""
    environment = {**os.environ, **(env or {}), "FLOPWISE_TMP": str(tmp_dir)}
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    ran = []
    for block, comment in bash_blocks((ROOT / doc_path).read_text()):
        command = tiny_block(block, comment)
        if command is None:
            continue
        done = subprocess.run(["bash", "-e", "-c", command], cwd=ROOT, env=environment, capture_output=True,
                              text=True)
        assert done.returncode == 0, (f"{doc_path}: exit {done.returncode} from\n{command}\n--- stdout\n"
                                      f"{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}")
        ran.append(command)
    return ran
