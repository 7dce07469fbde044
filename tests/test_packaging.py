"""Each package declares what it imports, its licence and version, and ships its ``py.typed`` marker.

Read from the sources and pyproject files (no install): `test_install_lines.py` installs them for real.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {p.parent.name: tomllib.loads(p.read_text()) for p in sorted(ROOT.glob("packages/*/pyproject.toml"))}
_DISTRIBUTIONS = importlib.metadata.packages_distributions()


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)).lower()


def _imports(package: str) -> dict[str, set[str]]:
    """Top-level module imported -> files importing it, for every absolute import in the package's sources."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "packages" / package / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                found.setdefault(module.split(".")[0], set()).add(path.name)
    return found


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_every_import_is_a_declared_dependency(package):
    project = PACKAGES[package]["project"]
    required = {_name(r) for r in project["dependencies"]}
    optional = {_name(r) for extra, reqs in project.get("optional-dependencies", {}).items() if extra != "test"
                for r in reqs}
    problems = []
    for module, files in sorted(_imports(package).items()):
        if module in sys.stdlib_module_names or module == package or module == "__future__":
            continue
        if module in PACKAGES:  # a sibling: always a required dependency
            names = {module}
            allowed = required
        else:
            # An optional package absent here (codecarbon) is looked up under its module name.
            names = {_name(d) for d in _DISTRIBUTIONS.get(module, [module])}
            allowed = required | optional
        if not names & allowed:
            problems.append(f"{module} (imported by {sorted(files)}) is not in its dependencies")
    assert not problems, f"packages/{package}/pyproject.toml: " + "; ".join(problems)


def test_flopmeter_is_a_dependency_of_every_package_that_records_flops():
    # FLOPs are the product: a package that trains (through runloop) or measures must bring flopmeter along, so
    # no install trains without counting. runloop measures the compiled step; everything above it depends on it.
    for package, pyproject in PACKAGES.items():
        required = {_name(r) for r in pyproject["project"]["dependencies"]}
        if "runloop" in required or package == "runloop":
            assert "flopmeter" in required, package


def _changelog_versions() -> list[str]:
    return re.findall(r"^## \[?(\d+\.\d+\.\d+)\]?", (ROOT / "CHANGELOG.md").read_text(), re.M)


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_licence_version_and_typed_marker(package):
    folder = ROOT / "packages" / package
    pyproject = PACKAGES[package]
    project, setuptools = pyproject["project"], pyproject["tool"]["setuptools"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    assert (folder / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
    assert "version" in project["dynamic"] and setuptools["dynamic"]["version"] == {"attr": f"{package}.__version__"}
    init = (folder / "src" / package / "__init__.py").read_text()
    version = re.search(r'^__version__ = "([^"]+)"$', init, re.M).group(1)
    assert version == _changelog_versions()[0], "the newest CHANGELOG.md entry is the packages' version"
    assert (folder / "src" / package / "py.typed").is_file()
    assert "py.typed" in setuptools["package-data"][package]


def test_root_project_citation_and_changelog_agree():
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert root["license"] == "Apache-2.0"
    versions = _changelog_versions()
    assert versions == sorted(versions, key=lambda v: tuple(map(int, v.split("."))), reverse=True), versions
    assert root["version"] == versions[0]
    citation = (ROOT / "CITATION.cff").read_text()
    assert re.search(r"^version: (\S+)$", citation, re.M).group(1) == versions[0]
    assert re.search(r"^license: (\S+)$", citation, re.M).group(1) == "Apache-2.0"
    readme = (ROOT / "README.md").read_text()  # the README's BibTeX of flopwise itself
    software = readme[readme.index("@software{flopwise"):]
    assert re.search(r"version = \{([^}]+)\}", software).group(1) == versions[0]
    for arxiv in ("2209.15589", "2310.16764", "2303.13496", "2110.02095"):  # the study and the three it extends
        assert f"arXiv:{arxiv}" in readme and f"arXiv:{arxiv}" in citation, arxiv


# A public name defined in two packages is either one concept written twice (it gets one home) or two concepts
# that share a name (a reader cannot tell which one a docstring means). Allowed, with why:
SHARED_NAMES = {
    # flopcli's convention: every command module has these three (docs/design.md, the commands)
    "main": "every command's entry point", "body": "every command's work", "build_parser": "every command's flags",
    # namespaced verbs on different objects: vitcore.build(config) a model, flopdata.build(name) a dataset
    "build": "vitcore.build (a backbone) and flopdata.build (a dataset)",
    # the same colour-space maths for two runtimes: numpy on the host (segmentation's photometric jitter) and
    # jax inside the compiled pre-training step; segtransfer does not depend on sslmethods
    "rgb_to_hsv": "numpy (segtransfer) and jax (sslmethods)", "hsv_to_rgb": "numpy (segtransfer) and jax (sslmethods)",
}


def _public_definitions() -> dict[str, set[str]]:
    """Public top-level function and class name -> the packages whose sources define it."""
    found: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (ROOT / "packages" / package / "src").rglob("*.py"):
            for node in ast.parse(path.read_text(), str(path)).body:
                if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
                    found.setdefault(node.name, set()).add(package)
    return found


def test_no_public_name_is_defined_in_two_packages():
    found = _public_definitions()
    twice = {name: sorted(packages) for name, packages in found.items()
             if len(packages) > 1 and name not in SHARED_NAMES}
    assert not twice, f"public names defined in more than one package (give each one home or its own name): {twice}"
    assert {"main", "build"} <= {n for n, p in found.items() if len(p) > 1}  # the scan sees the packages' sources
