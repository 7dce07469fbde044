"""Every `pip install` line of every README (and docs/*.md) is run, so none can rot.

The marker convention: an install line is a line of a fenced code block that starts with ``pip install``
(continued with a trailing backslash if long). Adding such a line adds a test; writing one in prose is an error.

- A line that names local packages (``packages/<name>``, ``.``) runs as written, from a copy of the repository, in
  a fresh venv whose site-packages sees the shared third-party packages but none of ours: our packages come only
  from the line itself, so a missing sibling dependency fails. pip runs offline (``--no-index``, no build
  isolation). Afterwards each named package must import from outside the checkout with its ``__version__`` and
  ``py.typed``.
- A line that names only PyPI requirements (``jax[cuda13]``, ``codecarbon``) cannot run offline; it must not name
  one of our packages (they are not on PyPI) and a ``jax[...]`` extra must exist in the installed jax.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import shutil
import site
import subprocess
import tomllib
import venv
from pathlib import Path

import pytest
from doc_blocks import fenced_blocks, install_commands

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *ROOT.glob("packages/*/README.md"), *ROOT.glob("docs/*.md")])
OURS = {tomllib.loads((p.parent / "pyproject.toml").read_text())["project"]["name"]: p.parent
        for p in [ROOT / "pyproject.toml", *ROOT.glob("packages/*/pyproject.toml")]}
_FENCE = re.compile(r"^\s*(```|~~~)")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def install_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, command) of every install line of a Markdown file (see the module docstring)."""
    return [line for block in fenced_blocks(path) for line in install_commands(block.text, block.line + 1)]


def requirements(command: str) -> list[str]:
    """The requirement arguments of a ``pip install`` command (its comment and options dropped)."""
    words = shlex.split(command, comments=True)[2:]
    return [w for w in words if not w.startswith("-")]


def _local_path(requirement: str) -> str | None:
    path = requirement.split("[")[0]
    return path if path == "." or path.startswith(("packages/", "./")) else None


CASES = [pytest.param(doc, number, command, id=f"{doc.relative_to(ROOT)}:{number}")
         for doc in DOCS for number, command in install_lines(doc)]
LOCAL = [c for c in CASES if any(_local_path(r) for r in requirements(c.values[2]))]
PYPI = [c for c in CASES if c not in LOCAL]


def test_install_lines_are_found_and_none_hides_in_prose():
    assert len(LOCAL) >= len(list(ROOT.glob("packages/*/README.md")))  # each package README says how to install
    for doc in DOCS:
        fenced = 0
        for number, raw in enumerate(doc.read_text().splitlines(), start=1):
            fenced ^= bool(_FENCE.match(raw))
            if "pip install" in raw and not (fenced and raw.strip().startswith("pip install")):
                pytest.fail(f"{doc.relative_to(ROOT)}:{number}: a `pip install` outside the start of a fenced "
                            f"line is not tested; put it on its own line in a code block: {raw.strip()!r}")


@pytest.mark.parametrize(("doc", "number", "command"), PYPI)
def test_pypi_install_line_names_no_local_package(doc, number, command):
    from packaging.requirements import Requirement

    for text in requirements(command):
        requirement = Requirement(text)
        name = requirement.name
        assert _norm(name) not in {_norm(n) for n in OURS}, f"{name} is ours and not on PyPI: install packages/{name}"
        if _norm(name) == "jax":  # the accelerator lines: the extra exists, the bounds admit the jax we test with
            provided = {_norm(e) for e in importlib.metadata.metadata("jax").get_all("Provides-Extra")}
            assert {_norm(e) for e in requirement.extras} <= provided, (text, sorted(provided))
            assert requirement.specifier.contains(importlib.metadata.version("jax")), text


def _shared_site_packages(tmp: Path) -> Path:
    """A folder of links to the shared environment's third-party packages, without ours (nor any .pth file)."""
    shadow = tmp / "shared-site-packages"
    shadow.mkdir()
    ours = tuple(_norm(n) for n in OURS)
    for folder in site.getsitepackages():
        for entry in Path(folder).iterdir():
            name = _norm(entry.name)
            if entry.suffix == ".pth" or entry.name.startswith("__editable__") or any(
                    name == o or name.startswith(o + "_") for o in ours) or (shadow / entry.name).exists():
                continue
            (shadow / entry.name).symlink_to(entry)
    return shadow


def _fresh_venv(tmp: Path, shadow: Path) -> Path:
    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=False, symlinks=True)
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = subprocess.run([env_dir / "bin" / "python", "-c", where], check=True, capture_output=True,
                             text=True).stdout.strip()
    Path(purelib, "shared.pth").write_text(f"{shadow}\n")  # third-party packages only (.pth files there are not run)
    shim = env_dir / "bin" / "pip"
    python = env_dir / "bin" / "python"
    shim.write_text(f'#!/bin/sh\nif [ "$1" = install ]; then shift; exec "{python}" -m pip install --no-index '
                    f'--no-build-isolation --no-cache-dir -q "$@"; fi\nexec "{python}" -m pip "$@"\n')
    shim.chmod(0o755)
    return env_dir


def _checkout_copy(tmp: Path) -> Path:
    """The files an install line may read, copied (pip builds in the source tree: the checkout stays clean)."""
    copy = tmp / "repo"
    copy.mkdir()
    ignore = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "tests", ".venv", "runs", "data")
    for name in ("LICENSE", "README.md", "pyproject.toml"):
        shutil.copy2(ROOT / name, copy / name)
    for name in ("packages", "tools", "configs"):
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, copy / name, symlinks=True, ignore=ignore)
    return copy


def _clean_env(env_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    return env | {"PATH": f"{env_dir / 'bin'}:{env['PATH']}", "PIP_CONFIG_FILE": os.devnull, "PYTHONNOUSERSITE": "1",
                  "VIRTUAL_ENV": str(env_dir), "JAX_PLATFORMS": "cpu"}


@pytest.fixture(scope="module")
def shadow(tmp_path_factory):
    return _shared_site_packages(tmp_path_factory.mktemp("shared"))


@pytest.mark.slow
@pytest.mark.parametrize(("doc", "number", "command"), LOCAL)
def test_local_install_line_installs_working_packages(doc, number, command, shadow, tmp_path):
    repo, env_dir = _checkout_copy(tmp_path), _fresh_venv(tmp_path, shadow)
    env = _clean_env(env_dir)
    run = subprocess.run(["bash", "-e", "-c", command], cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"{doc.relative_to(ROOT)}:{number}: {command}\n{run.stdout}{run.stderr}"

    names = [tomllib.loads((repo / _local_path(r) / "pyproject.toml").read_text())["project"]["name"]
             for r in requirements(command) if _local_path(r)]
    modules = [n for n in names if (OURS[n] / "src" / n).is_dir()]
    check = ("import importlib, pathlib, sys\n"
             "for name in sys.argv[1:]:\n"
             "    m = importlib.import_module(name)\n"
             "    here = pathlib.Path(m.__file__).parent\n"
             "    assert (here / 'py.typed').is_file(), f'{name}: no py.typed in {here}'\n"
             "    print(name, m.__version__, here)\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    imported = subprocess.run([env_dir / "bin" / "python", "-c", check, *modules], cwd=outside, env=env,
                              capture_output=True, text=True, timeout=600)
    assert imported.returncode == 0, f"{command}\n{imported.stdout}{imported.stderr}"
    for row, name in zip(imported.stdout.splitlines(), modules, strict=True):
        module, version, location = row.split(" ", 2)
        assert (module, version) == (name, _source_version(name))
        assert Path(location).is_relative_to(tmp_path), f"{name} imported from {location}, not from this install"


def _source_version(name: str) -> str:
    init = (OURS[name] / "src" / name / "__init__.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"', init, re.M).group(1)


@pytest.mark.slow
def test_console_scripts_run_outside_the_checkout(shadow, tmp_path):
    """Every console script our packages declare answers ``--help`` from an install, outside the repository."""
    declared = {name: folder for name, folder in OURS.items()
                if tomllib.loads((folder / "pyproject.toml").read_text())["project"].get("scripts")}
    if not declared:
        pytest.skip("no package declares console scripts ([project.scripts]) yet")
    repo, env_dir = _checkout_copy(tmp_path), _fresh_venv(tmp_path, shadow)
    env = _clean_env(env_dir)
    folders = [f"packages/{folder.name}" for folder in sorted(ROOT.glob("packages/*"))]
    folders += ["."] if ROOT in declared.values() else []  # an umbrella command declared at the root
    run = subprocess.run([env_dir / "bin" / "pip", "install", *folders], cwd=repo, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for name, folder in declared.items():
        for script in tomllib.loads((folder / "pyproject.toml").read_text())["project"]["scripts"]:
            helped = subprocess.run([env_dir / "bin" / script, "--help"], cwd=outside, env=env, capture_output=True,
                                    text=True, timeout=300)
            assert helped.returncode == 0 and "usage" in helped.stdout.lower(), (name, script, helped.stderr[-2000:])
