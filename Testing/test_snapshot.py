"""The offscreen 3D snapshot: a real PNG with the lesions in their class colours, and its window fallbacks."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from skimage.measure import marching_cubes
from vtkmodules.util import numpy_support
from vtkmodules.vtkIOImage import vtkPNGReader

from LesionDetectLib.detection.findings import Findings, Lesion, Surface
from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.volume import LPS_TO_RAS, Volume, ijk_to_ras_matrix
from LesionDetectLib.results import snapshot
from LesionDetectLib.results.colors import color_for_label

LIB_ROOT = Path(__file__).resolve().parents[1] / "LesionDetect"


def ball_surface(center_ras, radius_mm: float) -> Surface:
    step = 1.0
    half = int(np.ceil(radius_mm / step)) + 2
    axis = np.arange(-half, half + 1) * step
    zz, yy, xx = np.meshgrid(axis, axis, axis, indexing="ij")
    verts_zyx, faces, _, _ = marching_cubes(np.sqrt(xx**2 + yy**2 + zz**2), radius_mm, spacing=(step,) * 3)
    return Surface(verts_zyx[:, ::-1] - half * step + np.asarray(center_ras), faces[:, ::-1].astype(np.int64))


def two_lesion_findings(modality="MR") -> Findings:
    """A 100 mm oblique volume with a large calcium ball on the patient's left and a haemorrhage on the right."""
    tilt = np.array([[1, 0, 0], [0, np.cos(0.3), -np.sin(0.3)], [0, np.sin(0.3), np.cos(0.3)]])
    ijk_to_ras = ijk_to_ras_matrix((2.0, 2.0, 2.5), (50, 50, -50), LPS_TO_RAS[:3, :3] @ tilt)
    volume = Volume(np.zeros((40, 50, 50), dtype=np.int16), ijk_to_ras, "test volume", modality)
    boxes = [(1, "calcium", [[30, 18, 14], [44, 32, 26]]), (2, "hemorrhage", [[6, 20, 16], [16, 30, 24]])]
    lesions = []
    for lesion_id, label, box in boxes:
        lesion = Lesion.from_box(volume, lesion_id, label, box, score=0.8)
        lesion.surface = ball_surface(lesion.center_ras, 0.4 * lesion.size_mm.min())
        lesions.append(lesion)
    return Findings("calcium", "test", volume, lesions, {"agatston_total": 123.4, "category": "101–400"})


def read_png_rgb(path) -> np.ndarray:
    reader = vtkPNGReader()
    reader.SetFileName(str(path))
    reader.Update()
    image = reader.GetOutput()
    width, height, _ = image.GetDimensions()
    pixels = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars())
    return pixels.reshape(height, width, -1)[::-1, :, :3]  # rows top to bottom


def pixels_of_color(rgb_image: np.ndarray, rgb) -> np.ndarray:
    """Pixels whose colour points the way `rgb` does (any shading) and are bright enough to be lit surface."""
    pixels = rgb_image.reshape(-1, 3).astype(float)
    target = np.asarray(rgb) / np.linalg.norm(rgb)
    cosine = pixels @ target / np.maximum(np.linalg.norm(pixels, axis=1), 1e-9)
    return (cosine > 0.995) & (pixels.max(axis=1) > 100)


def test_snapshot_shows_both_lesions_in_their_colours(tmp_path):
    path = tmp_path / "snapshots" / "findings.png"
    snapshot.render_snapshot(two_lesion_findings(), path, size=(400, 300))
    image = read_png_rgb(path)
    assert image.shape == (300, 400, 3)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50
    calcium = pixels_of_color(image, color_for_label("calcium")).reshape(300, 400)
    hemorrhage = pixels_of_color(image, color_for_label("hemorrhage")).reshape(300, 400)
    assert calcium.sum() > 300 and hemorrhage.sum() > 150  # shaded balls, not only box outlines
    # Anterior view: the patient's right (the haemorrhage) is on the left of the image.
    assert np.nonzero(hemorrhage)[1].mean() + 40 < np.nonzero(calcium)[1].mean()


def test_snapshot_of_ct_draws_a_bone_context(tmp_path):
    findings = two_lesion_findings(modality="CT")
    findings.volume.array[:, 20:30, 20:30] = 700  # a "spine" between the lesions
    snapshot.render_snapshot(findings, tmp_path / "ct.png", size=(400, 300))
    with_bone = read_png_rgb(tmp_path / "ct.png")
    snapshot.render_snapshot(two_lesion_findings(modality="CT"), tmp_path / "no_bone.png", size=(400, 300))
    without_bone = read_png_rgb(tmp_path / "no_bone.png")
    changed = np.any(with_bone != without_bone, axis=2)
    assert changed[:, 150:250].sum() > 1000


def test_summary_line_reads_the_agatston_score():
    findings = two_lesion_findings()
    assert snapshot.summary_line(findings) == "Agatston 123 (101–400) · 2 lesions"
    findings.summary = {}
    findings.lesions = findings.lesions[:1]
    assert snapshot.summary_line(findings) == "1 lesion"


def test_requested_window_class_is_used(monkeypatch):
    vtk_opengl = pytest.importorskip("vtkmodules.vtkRenderingOpenGL2")
    if not hasattr(vtk_opengl, "vtkOSOpenGLRenderWindow"):
        pytest.skip("this VTK build has no OSMesa window")
    monkeypatch.setenv("VTK_DEFAULT_OPENGL_WINDOW", "vtkOSOpenGLRenderWindow")
    assert snapshot.offscreen_render_window().GetClassName() == "vtkOSOpenGLRenderWindow"


def test_broken_egl_falls_back_to_osmesa(tmp_path):
    """With no EGL vendor library, the snapshot is still written, through OSMesa."""
    script = (
        "import sys; from test_snapshot import two_lesion_findings; from LesionDetectLib.results import snapshot; "
        "print(snapshot.offscreen_render_window().GetClassName()); "
        "snapshot.render_snapshot(two_lesion_findings(), sys.argv[1], size=(200, 150))"
    )
    environment = dict(
        os.environ,
        __EGL_VENDOR_LIBRARY_FILENAMES=str(tmp_path / "none.json"),
        PYTHONPATH=os.pathsep.join([str(LIB_ROOT), str(Path(__file__).parent)]),
    )
    environment.pop("VTK_DEFAULT_OPENGL_WINDOW", None)
    environment.pop("DISPLAY", None)
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "fallback.png")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[0] == "vtkOSOpenGLRenderWindow"
    assert read_png_rgb(tmp_path / "fallback.png").shape == (150, 200, 3)


def test_no_usable_window_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(snapshot, "OFFSCREEN_WINDOW_CLASSES", ())
    monkeypatch.delenv("VTK_DEFAULT_OPENGL_WINDOW", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(snapshot.sys, "platform", "linux")
    with pytest.raises(LesionDetectError, match="Offscreen rendering is unavailable.*without the 3D snapshot"):
        snapshot.render_snapshot(two_lesion_findings(), tmp_path / "never.png")
    assert not (tmp_path / "never.png").exists()
