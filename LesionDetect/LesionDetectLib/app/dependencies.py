"""The Python packages the worker needs inside desktop Slicer, and which of them are missing.

Checked with `importlib.util.find_spec`, so nothing heavy is imported. What a run needs depends on
its detector's `Method`: every method needs `REQUIRED_PACKAGES`; a method with `needs_torch` needs
PyTorch, and its own `packages` (such as MONAI for a network) go in after torch, so that pip
does not pull a torch build of its own. Installing is the panel's job (on the first Detect, after the
user confirms): Slicer's PyTorch extension (`PyTorchUtils`) for torch, whose build must match the GPU
driver, then `slicer.util.pip_install` for the rest. The specifiers are those of pyproject.toml's
`[project] dependencies` (a test keeps the two the same).
"""

from __future__ import annotations

import importlib.util

# import name -> pip requirement. numpy, scipy, SimpleITK and pydicom ship with Slicer; they are
# listed so that a broken Slicer Python is reported rather than failing inside the worker.
REQUIRED_PACKAGES: dict[str, str] = {
    "numpy": "numpy>=1.26",
    "scipy": "scipy>=1.11",
    "SimpleITK": "SimpleITK>=2.3",
    "pydicom": "pydicom>=2.4",
    "skimage": "scikit-image==0.26.*",
    "cc3d": "connected-components-3d>=4.1",
    "safetensors": "safetensors>=0.4",
    "tqdm": "tqdm>=4.66",
    "imageio": "imageio>=2.33",
    "tifffile": "tifffile>=2023.1",
}

TORCH_IMPORT_NAME = "torch"
TORCH_REQUIREMENT = "torch>=2.2,<2.15"  # the PyTorch extension picks the build for the driver within this range

# Slicer provides its own MRML, VTK and Qt; pip-installing these into it would shadow and break them.
NEVER_PIP_INSTALL: tuple[str, ...] = ("slicer-core", "slicer-layer-dm", "vtk", "trame-slicer", "PyQt5", "PySide6")


def is_installed(import_name: str) -> bool:
    """Whether a top-level module can be imported, without importing it (sees packages installed just now)."""
    importlib.invalidate_caches()
    try:
        return importlib.util.find_spec(import_name) is not None
    except (ImportError, ValueError):
        return False


def required_packages(method) -> dict[str, str]:
    """Import name → pip requirement of everything `method` (a detector's `Method`) needs, torch excluded."""
    return {**REQUIRED_PACKAGES, **method.packages}


def missing_packages(method) -> list[str]:
    """Pip requirements of the packages `method` needs (torch excluded) that cannot be imported here."""
    return [requirement for name, requirement in required_packages(method).items() if not is_installed(name)]


def torch_missing(method) -> bool:
    """Whether `method` needs PyTorch and it still has to be installed."""
    return bool(method.needs_torch) and not is_installed(TORCH_IMPORT_NAME)


def torch_version_specifier() -> str:
    """The version range alone (">=2.2,<2.15"), as PyTorchUtils' `torchVersionRequirement` takes it."""
    return TORCH_REQUIREMENT[len("torch") :]


class PackageInstaller:
    """What the panel asks before a run: what is missing for a method, and how to install it.

    The checks are real here; the two installers are Slicer's (PyTorchUtils, `slicer.util.pip_install`)
    and are given by the module (`LesionDetect.py`), or by a test.
    """

    def torch_missing(self, method) -> bool:
        return torch_missing(method)

    def missing_packages(self, method) -> list[str]:
        return missing_packages(method)

    def install_torch(self) -> bool:
        """Install PyTorch (asking the user); False when it was declined. Raises LesionDetectError when impossible."""
        raise NotImplementedError

    def pip_install(self, requirements: list[str]) -> None:
        """Install these pip requirements; raises on failure."""
        raise NotImplementedError
