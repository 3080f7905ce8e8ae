"""The Python packages the worker needs inside desktop Slicer, and which of them are missing.

Checked with `importlib.util.find_spec`, so nothing heavy is imported. Installing is the panel's job
(on the first Detect, after the user confirms): `slicer.util.pip_install` for these requirements,
Slicer's PyTorch extension (`PyTorchUtils`) for torch, whose build must match the GPU driver.
"""

from __future__ import annotations

import importlib.util

# import name -> pip requirement. numpy, scipy, SimpleITK and pydicom ship with Slicer; they are
# listed so that a broken Slicer Python is reported rather than failing inside the worker.
REQUIRED_PACKAGES: dict[str, str] = {
    "numpy": "numpy",
    "scipy": "scipy",
    "SimpleITK": "SimpleITK",
    "pydicom": "pydicom",
    "skimage": "scikit-image==0.26.*",
    "cc3d": "connected-components-3d",
    "stl": "numpy-stl",
    "safetensors": "safetensors",
    "tqdm": "tqdm",
    "monai": "monai==1.6.1",
}

TORCH_IMPORT_NAME = "torch"
TORCH_REQUIREMENT = ">=2.2,<2.15"  # as in pyproject; the PyTorch extension picks the build for the driver

# Slicer provides its own MRML, VTK and Qt; pip-installing these into it would shadow and break them.
NEVER_PIP_INSTALL: tuple[str, ...] = ("slicer-core", "slicer-layer-dm", "vtk", "trame-slicer")


def is_installed(import_name: str) -> bool:
    """Whether a top-level module can be imported, without importing it (sees packages installed just now)."""
    importlib.invalidate_caches()
    try:
        return importlib.util.find_spec(import_name) is not None
    except (ImportError, ValueError):
        return False


def missing_packages() -> list[str]:
    """Pip requirements of the packages (torch excluded) that cannot be imported here."""
    return [requirement for name, requirement in REQUIRED_PACKAGES.items() if not is_installed(name)]


def torch_missing() -> bool:
    """Whether PyTorch still has to be installed."""
    return not is_installed(TORCH_IMPORT_NAME)
