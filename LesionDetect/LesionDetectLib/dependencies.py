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
}
# Only for methods with neural networks, and only after torch (MONAI would otherwise pull its own torch).
NETWORK_PACKAGES: dict[str, str] = {"monai": "monai==1.6.1"}
NETWORK_METHODS = ("deep",)

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


def needs_networks(method: str) -> bool:
    """Whether a detection method runs neural networks (and so needs torch and MONAI)."""
    return method in NETWORK_METHODS


def missing_packages(method: str = "deep") -> list[str]:
    """Pip requirements of the packages `method` needs (torch excluded) that cannot be imported here."""
    packages = {**REQUIRED_PACKAGES, **(NETWORK_PACKAGES if needs_networks(method) else {})}
    return [requirement for name, requirement in packages.items() if not is_installed(name)]


def torch_missing() -> bool:
    """Whether PyTorch still has to be installed."""
    return not is_installed(TORCH_IMPORT_NAME)
