"""Which Slicer and Python the extension supports, what the panel installs, and what a wheel carries.

- Slicer 5.10 is the minimum (its Python 3.12 satisfies requires-python; Slicer 5.8's 3.9 does not);
- the panel's pip requirements are exactly pyproject.toml's `[project] dependencies`;
- a wheel built from pyproject.toml carries the shipped models, and an installed copy finds them.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from LesionDetectLib.app import dependencies
from LesionDetectLib.app.slicer_version import (
    MINIMUM_SLICER,
    MINIMUM_SLICER_PYTHON,
    REQUIRES_PYTHON,
    slicer_version_problem,
)
from LesionDetectLib.detection.registry import detectors

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
SLICER_5_8_PYTHON = (3, 9)  # Slicer 5.8 and older


def _version(parts) -> str:
    return ".".join(str(part) for part in parts)


# ---------------------------------------------------------------- Slicer versions


@pytest.mark.parametrize(
    ("major", "minor", "python", "problem"),
    [
        (5, 8, (3, 9, 10), "needs 3D Slicer 5.10 or later; this is Slicer 5.8 (Python 3.9)"),
        (5, 6, (3, 9, 10), "needs 3D Slicer 5.10 or later"),
        (4, 11, (3, 6, 7), "needs 3D Slicer 5.10 or later"),
        (5, 10, (3, 10, 0), "needs Python 3.11 or later, but this Slicer 5.10 runs Python 3.10"),
        (5, 10, (3, 12, 10), None),
        (5, 11, (3, 12, 10), None),
        (6, 0, (3, 13, 1), None),
    ],
)
def test_slicer_version_problem(major, minor, python, problem):
    message = slicer_version_problem(major, minor, python)
    if problem is None:
        assert message is None
    else:
        assert problem in message
        assert "Slicer" in message and message.endswith(".")


def test_requires_python_covers_the_minimum_slicers_python_and_not_slicer_5_8s():
    requires_python = SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert requires_python.contains(_version(MINIMUM_SLICER_PYTHON)), "Slicer 5.10's Python must install the package"
    assert requires_python.contains(_version(REQUIRES_PYTHON))
    assert not requires_python.contains(_version((REQUIRES_PYTHON[0], REQUIRES_PYTHON[1] - 1)))
    assert not requires_python.contains(_version(SLICER_5_8_PYTHON))
    assert MINIMUM_SLICER == (5, 10) and MINIMUM_SLICER_PYTHON >= REQUIRES_PYTHON


def test_the_pinned_dependencies_are_why_python_3_9_is_refused():
    """The installed pins' own Requires-Python: all admit the stated floor, and some refuse Slicer 5.8's 3.9."""
    refusing_3_9 = []
    for text in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(text)
        try:
            needed = importlib.metadata.metadata(requirement.name).get("Requires-Python") or ""
        except importlib.metadata.PackageNotFoundError:
            pytest.fail(f"{requirement.name} is not installed here")
        specifier = SpecifierSet(needed)
        assert specifier.contains(_version(REQUIRES_PYTHON)), f"{requirement.name} needs Python {needed}"
        if not specifier.contains(_version(SLICER_5_8_PYTHON)):
            refusing_3_9.append(requirement.name)
    assert {"scikit-image", "monai"} <= {canonicalize_name(name) for name in refusing_3_9}


# ---------------------------------------------------------------- what the panel installs


def _requirement_key(text: str) -> tuple[str, str]:
    requirement = Requirement(text)
    return canonicalize_name(requirement.name), str(requirement.specifier)


def test_the_panels_requirements_are_exactly_pyprojects_dependencies():
    panel = [*dependencies.REQUIRED_PACKAGES.values(), dependencies.TORCH_REQUIREMENT]
    for detector in detectors().values():
        for method in detector.methods:
            panel += method.packages.values()
    assert sorted(set(map(_requirement_key, panel))) == sorted(
        map(_requirement_key, PYPROJECT["project"]["dependencies"])
    )


def test_import_names_match_the_distributions_they_check():
    """`missing_packages` checks an import name: it must belong to the distribution it would install."""
    distributions = importlib.metadata.packages_distributions()
    for import_name, requirement in dependencies.REQUIRED_PACKAGES.items():
        owners = {canonicalize_name(name) for name in distributions.get(import_name, [])}
        assert canonicalize_name(Requirement(requirement).name) in owners, (import_name, owners)


# ---------------------------------------------------------------- the wheel


def test_the_wheels_package_list_names_every_subpackage():
    from setuptools import find_packages

    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = set(find_packages(str(REPO / "LesionDetect"), include=["LesionDetectLib*"]))
    assert listed - found == {"LesionDetectLib.Resources.Models"}
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


def _copy_sources(destination: Path) -> Path:
    """What the wheel is built from, outside the working tree (building writes build/ and egg-info)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copy(REPO / "pyproject.toml", destination / "pyproject.toml")
    shutil.copy(REPO / "README.md", destination / "README.md")
    shutil.copytree(
        REPO / "LesionDetect" / "LesionDetectLib", destination / "LesionDetect" / "LesionDetectLib", ignore=ignore
    )
    shutil.copytree(REPO / "LesionDetect" / "Resources", destination / "LesionDetect" / "Resources", ignore=ignore)
    return destination


def test_a_built_wheel_carries_the_models_and_an_installed_copy_finds_them(tmp_path):
    source = _copy_sources(tmp_path)
    offline = ["--no-build-isolation"] if _has_setuptools() else []  # else pip fetches setuptools for the build
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", *offline, "-w", "dist", "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr
    [wheel] = (source / "dist").glob("lesiondetect-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in (REPO / "LesionDetect" / "Resources" / "Models").iterdir():
        assert f"LesionDetectLib/Resources/Models/{shipped.name}" in names
    assert "LesionDetectLib/results/schemas/report.schema.json" in names
    assert "LesionDetectLib/detectors/calcium/report.schema.json" in names
    assert not any(name.startswith("Resources/") for name in names), "no top-level Resources package"

    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr
    probe = (
        "import LesionDetectLib; print(LesionDetectLib.__file__)\n"
        "from LesionDetectLib.detectors.calcium.model import DEFAULT_MANIFEST, load_calcium_model\n"
        "print(DEFAULT_MANIFEST)\n"
        "print(load_calcium_model(DEFAULT_MANIFEST).version)\n"
        "from LesionDetectLib.detection.registry import get_detector\n"
        "print(get_detector('calcium').default_method)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    package_file, manifest, version, default_method = result.stdout.strip().splitlines()
    assert Path(package_file).is_relative_to(site), "the probe imported the source tree, not the installed copy"
    assert Path(manifest) == site / "LesionDetectLib" / "Resources" / "Models" / "calcium_deep.json"
    assert version and default_method == "deep", "the installed package fell back to the classical method"


def _has_setuptools() -> bool:
    try:
        import setuptools  # noqa: F401
    except ImportError:
        return False
    return True
