"""Runs the ```bash blocks of a Markdown guide, shrunk to test size, so no guide can rot.

The convention (every guide that a test runs follows it):

- Every fenced block whose info string is ``bash`` (or ``sh``) runs, in document order, as its own
  ``bash -euo pipefail`` script, with the repository root as the working directory, the test's Python first on
  ``PATH`` (so ``python`` is the environment's) and ``$FLOPWISE_TMP`` set to a temporary folder for the file.
  Shell state (``cd``, variables) does not carry from one block to the next; files do.
- An HTML comment directly above the opening fence (no blank line between) shrinks the block before it runs::

      <!-- tiny: "--steps 2000" -> "--steps 4"; "--out runs/x" -> "--out $FLOPWISE_TMP/x" -->

  Each ``"old" -> "new"`` pair is a plain-text substitution (every occurrence), applied in order; the strings
  are JSON string literals (``\\"`` for a quote inside; a line break inside one, with the spaces around it,
  reads as one space, so long ones can wrap). Every old text must occur in the block when its turn
  comes, otherwise the test fails: a stale comment cannot silently do nothing. A tiny comment may span lines
  (it ends on the line above the fence). Use it to shrink steps, budgets, sizes and batches and to send outputs
  into ``$FLOPWISE_TMP`` (doc commands write ``runs/...``; a block must write nothing into the checkout).
- ``<!-- no-run: reason -->`` directly above a block skips it; the reason is required. It is for lines that
  cannot run on a CPU test machine (SLURM, several GPUs, GPU-only installs) or that would run the tests
  themselves (``make test``).
- ``pip install`` lines (and their backslash continuations) are left out of the script by rule: they would
  reinstall the project into the test environment, and ``tests/test_install_lines.py`` runs each of them in a
  fresh venv. The rest of the block runs.
- A ``<!-- tiny`` or ``<!-- no-run`` comment anywhere else (not directly above a bash block), or one that does
  not parse, fails the test.

`run_blocks(doc_path, tmp_dir, env=None)` runs one file and returns the scripts that ran (`run_doc`: with each
block's output); `RUN_BY` records which test runs which Markdown file,
so that tests/test_guides.py can check that every docs/*.md file with bash blocks is run by some test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNNABLE = ("bash", "sh")
TIMEOUT_S = 1800  # one block at tiny size; a guide's block that needs longer is not tiny

# Which test runs each Markdown file's bash blocks (paths relative to the repository root).
RUN_BY = {
    "README.md": "tests/test_guides.py",
    "docs/guide.md": "tests/test_guides.py",
    "docs/beyond.md": "tests/test_guides.py",
    "docs/own-data.md": "tests/test_own_data.py",
    "docs/scale-out.md": "tests/test_guides.py",
    "docs/commands.md": "tests/test_guides.py",
    "packages/segtransfer/README.md": "tests/test_guides.py",
    "packages/sslmethods/README.md": "tests/test_guides.py",
}

_FENCE = re.compile(r"^\s*(```|~~~)\s*([\w+-]*)")
_DIRECTIVE = re.compile(r"^<!--\s*(tiny|no-run)\s*:(.*?)-->$", re.S)
_STRING = r'"((?:[^"\\]|\\.)*)"'
_PAIR = re.compile(rf"\s*{_STRING}\s*->\s*{_STRING}\s*(;|$)", re.S)
_INSTALL = re.compile(r"^\s*pip install\s")


class DocError(AssertionError):
    """A guide's block failed, or a tiny/no-run comment is malformed or stale."""


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it starts (the opening fence's 1-based line), its info string, its text, the
    heading it sits under (the chain of headings, outermost first) and the comment directly above it."""

    path: Path
    line: int
    lang: str
    text: str
    headings: tuple[str, ...]
    directive: str | None  # the raw comment (``<!-- ... -->``) directly above the fence, if any

    @property
    def where(self) -> str:
        return f"{_rel(self.path)}:{self.line}"


def _rel(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def fenced_blocks(path: Path) -> list[Block]:
    """Every fenced code block of a Markdown file, any language, in order (an unclosed fence is an error)."""
    path = Path(path)
    lines = path.read_text().splitlines()
    blocks, headings, i = [], [], 0
    while i < len(lines):
        raw = lines[i]
        heading = re.match(r"^(#{1,6})\s+(.*)$", raw)
        if heading:
            level = len(heading.group(1))
            headings = [*headings[: level - 1], *[""] * max(0, level - 1 - len(headings)), heading.group(2).strip()]
        fence = _FENCE.match(raw)
        if not fence:
            i += 1
            continue
        start, marker = i, fence.group(1)
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(marker):
            i += 1
        if i == len(lines):
            raise DocError(f"{_rel(path)}:{start + 1}: a code fence that is never closed")
        blocks.append(Block(path, start + 1, fence.group(2).lower(), "\n".join(lines[start + 1:i]),
                            tuple(h for h in headings if h), _comment_above(lines, start)))
        i += 1
    return blocks


def _comment_above(lines: list[str], fence_index: int) -> str | None:
    """The HTML comment that ends on the line directly above ``fence_index``, if one does."""
    end = fence_index - 1
    if end < 0 or not lines[end].rstrip().endswith("-->"):
        return None
    start = end
    while start >= 0 and "<!--" not in lines[start]:
        start -= 1
    if start < 0:
        return None
    return "\n".join(lines[start:end + 1]).strip()


def install_commands(text: str, first_line: int = 1) -> list[tuple[int, str]]:
    """(line number, command) of each ``pip install`` line of a block's text, backslash continuations joined."""
    out, pending = [], None
    for number, raw in enumerate(text.splitlines(), start=first_line):
        line = raw.strip()
        if pending is not None:
            pending = (pending[0], pending[1] + " " + line.rstrip("\\").strip())
            if not line.endswith("\\"):
                out.append(pending)
                pending = None
        elif _INSTALL.match(raw):
            if line.endswith("\\"):
                pending = (number, line.rstrip("\\").strip())
            else:
                out.append((number, line))
    if pending is not None:
        out.append(pending)
    return out


def without_install_lines(text: str) -> str:
    """The block's text with its ``pip install`` lines (and their continuations) left out."""
    kept, continuing = [], False
    for raw in text.splitlines():
        if continuing or _INSTALL.match(raw):
            continuing = raw.rstrip().endswith("\\")
            continue
        kept.append(raw)
    return "\n".join(kept)


def parse_directive(block: Block) -> tuple[str, list[tuple[str, str]] | str] | None:
    """``("tiny", [(old, new), ...])``, ``("no-run", reason)`` or None for a block without a directive."""
    if block.directive is None:
        return None
    match = _DIRECTIVE.match(block.directive)
    if match is None:
        if re.match(r"^<!--\s*(tiny|no-run)\b", block.directive):
            raise DocError(f"{block.where}: malformed comment {block.directive!r}; write "
                           '<!-- tiny: "old" -> "new"; ... --> or <!-- no-run: reason -->')
        return None  # some other comment
    kind, body = match.group(1), match.group(2).strip()
    if kind == "no-run":
        if not body:
            raise DocError(f"{block.where}: <!-- no-run: --> needs a reason")
        return kind, body
    pairs, pos = [], 0
    while pos < len(body):
        pair = _PAIR.match(body, pos)
        if pair is None:
            raise DocError(f'{block.where}: cannot read the tiny substitutions at {body[pos:]!r}; write "old" -> '
                           '"new" pairs separated by ";" (JSON strings)')
        try:
            pairs.append((_string(pair.group(1)), _string(pair.group(2))))
        except json.JSONDecodeError as e:
            raise DocError(f"{block.where}: a tiny substitution's string does not read as JSON: {e}") from None
        pos = pair.end()
    if not pairs:
        raise DocError(f"{block.where}: a tiny comment without substitutions")
    return kind, pairs


def _string(body: str) -> str:
    """A JSON string literal's value; a line break inside it, with the spaces around it, reads as one space."""
    return json.loads('"' + re.sub(r"\s*\n\s*", " ", body) + '"')


def script_for(block: Block) -> str | None:
    """The script a block runs as (tiny substitutions applied, pip install lines left out), None if no-run."""
    directive = parse_directive(block)
    if directive and directive[0] == "no-run":
        return None
    text = block.text
    for old, new in directive[1] if directive else ():
        if old not in text:
            raise DocError(f"{block.where}: the tiny substitution's old text {old!r} is not in the block (stale "
                           f"comment?); the block reads:\n{text}")
        text = text.replace(old, new)
    return without_install_lines(text)


def runnable_blocks(path: Path, *, under: str | None = None) -> list[Block]:
    """The bash blocks of a file, or only those under a heading containing ``under`` (case-insensitive), after
    checking that every tiny/no-run comment of the file sits directly above a bash block."""
    blocks = fenced_blocks(path)
    attached = {b.line - 1 for b in blocks if b.lang in RUNNABLE}  # the line a comment above a bash fence ends on
    lines, fenced = Path(path).read_text().splitlines(), False
    for number, raw in enumerate(lines, start=1):
        fenced ^= bool(_FENCE.match(raw))
        if not fenced and re.match(r"^\s*<!--\s*(tiny|no-run)\b", raw):
            end = next((n for n in range(number, len(lines) + 1) if "-->" in lines[n - 1]), None)
            if end not in attached:
                raise DocError(f"{_rel(Path(path))}:{number}: a tiny/no-run comment that is not directly above a "
                               "```bash block does nothing")
    chosen = [b for b in blocks if b.lang in RUNNABLE]
    if under is not None:
        chosen = [b for b in chosen if any(under.lower() in h.lower() for h in b.headings)]
    return chosen


def block_env(tmp_dir: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a block runs in: this process's (without the test suite's fake-device XLA_FLAGS), this
    Python first on PATH, FLOPWISE_TMP, then ``env`` on top."""
    base = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
    base["FLOPWISE_TMP"] = str(tmp_dir)
    return base | dict(env or {})


def _checkout_entries() -> set[str]:
    """What a block could leave in the checkout: the entries of the root and of runs/, data/ and docs/ (hidden
    ones aside: tools' caches such as .pytest_cache may appear at any time)."""
    out = set()
    for folder in (ROOT, ROOT / "runs", ROOT / "data", ROOT / "docs"):
        if folder.is_dir():
            out |= {str(p.relative_to(ROOT)) for p in folder.iterdir() if not p.name.startswith(".")}
    return out


@dataclass(frozen=True)
class BlockRun:
    """One block of a run: the block, the script it ran as (None: a no-run block) and its output."""

    block: Block
    script: str | None
    output: str


def run_doc(doc_path: str | Path, tmp_dir: str | Path, env: Mapping[str, str] | None = None, *,
            under: str | None = None) -> list[BlockRun]:
    """Runs a Markdown file's bash blocks in order at tiny size (see the module docstring); ``under`` keeps only
    blocks under a heading containing it. Every comment is checked before anything runs. Fails (DocError) at the
    first block that exits non-zero, with the block, its script and its output, or that left a new entry in the
    checkout's root, runs/, data/ or docs/."""
    path = Path(doc_path) if Path(doc_path).is_absolute() else ROOT / doc_path
    tmp_dir = Path(tmp_dir)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    blocks = runnable_blocks(path, under=under)
    scripts = [script_for(b) for b in blocks]
    runs = []
    for block, script in zip(blocks, scripts, strict=True):
        if script is None:
            runs.append(BlockRun(block, None, ""))
            continue
        before = _checkout_entries()
        try:
            run = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=block_env(tmp_dir, env),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired as e:
            raise DocError(f"{block.where}: the block ran past {TIMEOUT_S} s at tiny size:\n{script}\n--- output:\n"
                           f"{_tail(e.output)}") from None
        if run.returncode != 0:
            raise DocError(f"{block.where}: the block exited with status {run.returncode}:\n{script}\n--- output:\n"
                           f"{_tail(run.stdout)}")
        left = sorted(_checkout_entries() - before)
        if left:
            raise DocError(f"{block.where}: the block wrote {left} into the checkout; send its outputs to "
                           f"$FLOPWISE_TMP with a tiny substitution:\n{script}")
        runs.append(BlockRun(block, script, run.stdout))
    return runs


def run_blocks(doc_path: str | Path, tmp_dir: str | Path, env: Mapping[str, str] | None = None, *,
               under: str | None = None) -> list[str]:
    """`run_doc`, returning the scripts that ran (tiny substitutions applied; no-run blocks left out), in order."""
    return [r.script for r in run_doc(doc_path, tmp_dir, env, under=under) if r.script is not None]


def _tail(text: str | bytes | None, limit: int = 6000) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    text = text or ""
    return text if len(text) <= limit else "...\n" + text[-limit:]


__all__ = ["RUN_BY", "Block", "BlockRun", "DocError", "fenced_blocks", "install_commands", "parse_directive",
           "run_blocks", "run_doc", "runnable_blocks", "script_for", "without_install_lines"]
