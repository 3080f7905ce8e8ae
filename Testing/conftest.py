"""Put `LesionDetectLib` and the `training/` modules on the import path; share one real slicer-core scene."""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "LesionDetect"))
sys.path.insert(0, str(REPO / "training"))


@pytest.fixture(scope="session")
def slicer_app():
    """A real MRML scene with Slicer's module logics (trame-slicer's SlicerApp over slicer-core)."""
    from trame_slicer.core import SlicerApp

    return SlicerApp()


@pytest.fixture
def mrml_scene(slicer_app):
    """The shared scene, emptied after each test."""
    yield slicer_app.scene
    slicer_app.scene.Clear(False)


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test (small tensors: thread start-up costs more than it saves), then as before."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
