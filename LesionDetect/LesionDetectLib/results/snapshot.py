"""An offscreen PNG of the findings in 3D with plain VTK (no MRML): the worker process has no scene.

Anterior view like Slicer's default 3D view (patient's right on the left of the image), lesion
surfaces and oriented boxes coloured by class, the input volume's outline with R/L/S/I labels,
a title with the detector's summary and a colour legend.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import vtkmodules.vtkRenderingFreeType  # noqa: F401  (registers the text renderer the labels need)
from vtkmodules.util import numpy_support
from vtkmodules.vtkCommonCore import vtkPoints
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData
from vtkmodules.vtkIOImage import vtkPNGWriter
from vtkmodules.vtkRenderingCore import (
    vtkActor,
    vtkBillboardTextActor3D,
    vtkPolyDataMapper,
    vtkRenderer,
    vtkRenderWindow,
    vtkTextActor,
    vtkWindowToImageFilter,
)

from LesionDetectLib.detection.findings import Findings, Lesion
from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.results.colors import color_for_label
from LesionDetectLib.results.meshes import merge_surfaces, polydata_from_surface

OFFSCREEN_WINDOW_CLASSES = ("vtkEGLRenderWindow", "vtkOSOpenGLRenderWindow")
BACKGROUND_TOP_RGB = (0.16, 0.18, 0.24)
BACKGROUND_BOTTOM_RGB = (0.02, 0.02, 0.04)
OUTLINE_RGB = (0.7, 0.72, 0.78)
TEXT_RGB = (1.0, 1.0, 1.0)
MAX_LESION_NUMBERS = 40  # beyond this many lesions, numbering them only clutters the view
CONTEXT_RGB = (0.85, 0.82, 0.75)
CONTEXT_OPACITY = 0.18

# Edges of a unit cube whose corners are indexed by bits (i, j, k) = (n & 1, n >> 1 & 1, n >> 2 & 1).
BOX_EDGES = np.array([[0, 1], [2, 3], [4, 5], [6, 7], [0, 2], [1, 3], [4, 6], [5, 7], [0, 4], [1, 5], [2, 6], [3, 7]])
UNIT_CORNERS = np.array([[n & 1, n >> 1 & 1, n >> 2 & 1] for n in range(8)], dtype=float) - 0.5


def render_snapshot(findings: Findings, path, size=(800, 600)) -> None:
    """Write a PNG of the findings seen from anterior, `size` = (width, height) in pixels."""
    render_window = offscreen_render_window()
    render_window.SetSize(int(size[0]), int(size[1]))
    renderer = vtkRenderer()
    renderer.GradientBackgroundOn()
    renderer.SetBackground(*BACKGROUND_BOTTOM_RGB)
    renderer.SetBackground2(*BACKGROUND_TOP_RGB)
    render_window.AddRenderer(renderer)

    volume_corners_ras = _volume_corners_ras(findings)
    context = _context_actor(findings)
    if context is not None:
        renderer.AddActor(context)
    renderer.AddActor(_lines_actor(_box_lines(volume_corners_ras[None]), OUTLINE_RGB, opacity=0.6))
    for actor in _side_labels(volume_corners_ras):
        renderer.AddActor(actor)
    if findings.lesions:
        lesion_corners = np.stack([_lesion_corners_ras(findings, lesion) for lesion in findings.lesions])
        box_colors = [color_for_label(lesion.label) for lesion in findings.lesions]
        renderer.AddActor(_lines_actor(_box_lines(lesion_corners, box_colors)))
    surface_actor = _surfaces_actor(findings.lesions)
    if surface_actor is not None:
        renderer.AddActor(surface_actor)
    if len(findings.lesions) <= MAX_LESION_NUMBERS:
        for lesion in findings.lesions:
            renderer.AddActor(_lesion_number(findings, lesion))
    for actor in _overlay_texts(findings, size):
        renderer.AddViewProp(actor)

    _anterior_camera(renderer, volume_corners_ras)
    render_window.Render()
    _write_png(render_window, path)
    render_window.Finalize()


def offscreen_render_window() -> vtkRenderWindow:
    """An offscreen render window: `VTK_DEFAULT_OPENGL_WINDOW` if set, else EGL, else OSMesa, else on-screen's.

    The classes are created directly rather than by setting the environment variable, so this works
    whatever windows the process made before, and leaves other windows of the process (Slicer's) alone.
    """
    try:
        from vtkmodules import vtkRenderingOpenGL2
    except ImportError as error:
        raise LesionDetectError(_no_rendering_message(f"VTK's OpenGL module does not load ({error})")) from error
    requested = os.environ.get("VTK_DEFAULT_OPENGL_WINDOW")
    class_names = [name for name in (requested, *OFFSCREEN_WINDOW_CLASSES) if name]
    window_classes = [
        getattr(vtkRenderingOpenGL2, name) for name in dict.fromkeys(class_names) if hasattr(vtkRenderingOpenGL2, name)
    ]
    if sys.platform != "linux" or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        window_classes.append(vtkRenderWindow)  # the platform's own window, hidden: Windows, macOS, a desktop
    for window_class in window_classes:
        window = window_class()
        window.SetOffScreenRendering(True)
        if window.SupportsOpenGL():
            return window
    raise LesionDetectError(_no_rendering_message("no OpenGL context could be created (tried EGL and OSMesa)"))


def _no_rendering_message(reason: str) -> str:
    return (
        f"Offscreen rendering is unavailable: {reason}. Install Mesa's EGL (Debian: libegl1 libgl1-mesa-dri) "
        "or OSMesa (libosmesa6), or run without the 3D snapshot; the findings themselves are unaffected."
    )


def _volume_corners_ras(findings: Findings) -> np.ndarray:
    """The 8 corners (RAS) of the input volume's outer voxel faces, indexed like `UNIT_CORNERS`."""
    volume = findings.volume
    corners_ijk = (UNIT_CORNERS + 0.5) * np.asarray(volume.shape_ijk, dtype=float) - 0.5
    return volume.ijk_to_ras_points(corners_ijk)


def _lesion_corners_ras(findings: Findings, lesion: Lesion) -> np.ndarray:
    """The lesion box's 8 corners: centre ± half size along the volume's i, j, k directions."""
    offsets = UNIT_CORNERS * np.asarray(lesion.size_mm, dtype=float)
    return np.asarray(lesion.center_ras, dtype=float) + offsets @ findings.volume.directions.T


def _context_actor(findings: Findings) -> vtkActor | None:
    """The detector's faint context surface (e.g. bone), if it draws one."""
    surface = _detector(findings).snapshot_context(findings) if _detector(findings) else None
    if surface is None or len(surface.triangles) == 0:
        return None
    mapper = vtkPolyDataMapper()
    mapper.SetInputData(polydata_from_surface(surface))
    mapper.ScalarVisibilityOff()
    actor = vtkActor()
    actor.SetMapper(mapper)
    actor.GetProperty().SetColor(*CONTEXT_RGB)
    actor.GetProperty().SetOpacity(CONTEXT_OPACITY)
    return actor


def _detector(findings: Findings):
    from LesionDetectLib.detection.registry import detectors

    return detectors().get(findings.detector)


def _box_lines(corners_ras: np.ndarray, colors_rgb=None) -> vtkPolyData:
    """Line polydata of the 12 edges of each box in `corners_ras` (B, 8, 3), one colour per box."""
    box_count = len(corners_ras)
    points = vtkPoints()
    points.SetData(numpy_support.numpy_to_vtk(corners_ras.reshape(-1, 3).astype(np.float64), deep=True))
    connectivity = (BOX_EDGES[None] + 8 * np.arange(box_count)[:, None, None]).reshape(-1).astype(np.int64)
    offsets = np.arange(0, len(connectivity) + 1, 2, dtype=np.int64)
    lines = vtkCellArray()
    lines.SetData(numpy_support.numpy_to_vtk(offsets, deep=True), numpy_support.numpy_to_vtk(connectivity, deep=True))
    polydata = vtkPolyData()
    polydata.SetPoints(points)
    polydata.SetLines(lines)
    if colors_rgb is not None:
        cell_colors = np.repeat(np.round(np.asarray(colors_rgb) * 255).astype(np.uint8), len(BOX_EDGES), axis=0)
        colors = numpy_support.numpy_to_vtk(cell_colors, deep=True)
        colors.SetName("colors")
        polydata.GetCellData().SetScalars(colors)
    return polydata


def _lines_actor(polydata: vtkPolyData, rgb=(1.0, 1.0, 1.0), opacity: float = 1.0) -> vtkActor:
    mapper = vtkPolyDataMapper()
    mapper.SetInputData(polydata)
    mapper.SetColorModeToDirectScalars()
    actor = vtkActor()
    actor.SetMapper(mapper)
    actor.GetProperty().SetColor(*rgb)
    actor.GetProperty().SetOpacity(opacity)
    actor.GetProperty().SetLineWidth(1.5)
    actor.GetProperty().LightingOff()
    return actor


def _surfaces_actor(lesions: list[Lesion]) -> vtkActor | None:
    """All lesion surfaces in one smooth-shaded actor, each coloured by its class."""
    with_surface = [lesion for lesion in lesions if lesion.surface is not None and len(lesion.surface.triangles)]
    if not with_surface:
        return None
    polydata = polydata_from_surface(merge_surfaces([lesion.surface for lesion in with_surface]))
    colors = [
        np.tile(np.round(np.asarray(color_for_label(lesion.label)) * 255), (len(lesion.surface.points_ras), 1))
        for lesion in with_surface
    ]
    point_colors = numpy_support.numpy_to_vtk(np.concatenate(colors).astype(np.uint8), deep=True)
    point_colors.SetName("colors")
    polydata.GetPointData().SetScalars(point_colors)
    mapper = vtkPolyDataMapper()
    mapper.SetInputData(polydata)
    mapper.SetColorModeToDirectScalars()
    actor = vtkActor()
    actor.SetMapper(mapper)
    actor.GetProperty().SetSpecular(0.3)
    actor.GetProperty().SetSpecularPower(20)
    return actor


def _lesion_number(findings: Findings, lesion: Lesion) -> vtkBillboardTextActor3D:
    """The lesion id beside its box's upper right corner (as seen from anterior), to match the table."""
    corners_ras = _lesion_corners_ras(findings, lesion)
    label = vtkBillboardTextActor3D()
    label.SetInput(str(lesion.id))
    label.SetPosition(corners_ras[:, 0].min() - 1.0, corners_ras[:, 1].max(), corners_ras[:, 2].max() + 1.0)
    label.GetTextProperty().SetFontSize(14)
    label.GetTextProperty().SetColor(*color_for_label(lesion.label))
    label.GetTextProperty().SetJustificationToLeft()
    label.GetTextProperty().ShadowOn()
    return label


def _side_labels(volume_corners_ras: np.ndarray) -> list[vtkBillboardTextActor3D]:
    """R, L, S, I at the middle of the volume's outer sides, as Slicer's 3D view shows them."""
    low, high = volume_corners_ras.min(axis=0), volume_corners_ras.max(axis=0)
    center = (low + high) / 2
    margin = 0.04 * (high - low).max()
    positions = {
        "R": (high[0] + margin, center[1], center[2]),
        "L": (low[0] - margin, center[1], center[2]),
        "S": (center[0], center[1], high[2] + margin),
        "I": (center[0], center[1], low[2] - margin),
    }
    labels = []
    for text, position in positions.items():
        label = vtkBillboardTextActor3D()
        label.SetInput(text)
        label.SetPosition(*position)
        label.GetTextProperty().SetFontSize(20)
        label.GetTextProperty().BoldOn()
        label.GetTextProperty().SetColor(*OUTLINE_RGB)
        label.GetTextProperty().SetJustificationToCentered()
        label.GetTextProperty().SetVerticalJustificationToCentered()
        labels.append(label)
    return labels


def summary_line(findings: Findings) -> str:
    """The detector's one-line summary, or the lesion count for a detector this process does not know."""
    detector = _detector(findings)
    if detector is not None:
        return detector.summary_line(findings)
    count = len(findings.lesions)
    return f"{count} lesion{'' if count == 1 else 's'}"


def _overlay_texts(findings: Findings, size) -> list[vtkTextActor]:
    """Title and summary top left, view name bottom left, class legend bottom right."""
    width, height = int(size[0]), int(size[1])
    font_size = max(12, round(height / 32))
    title = _text(f"{_title(findings)} – {findings.volume.name}", font_size + 2, TEXT_RGB)
    title.GetTextProperty().BoldOn()
    title.SetDisplayPosition(12, height - 12 - (font_size + 2))
    summary = _text(summary_line(findings), font_size, TEXT_RGB)
    summary.SetDisplayPosition(12, height - 20 - 2 * (font_size + 2))
    view_name = _text("Anterior view", font_size - 2, OUTLINE_RGB)
    view_name.SetDisplayPosition(12, 10)
    texts = [title, summary, view_name]
    label_counts = Counter(lesion.label for lesion in findings.lesions)
    for row, (label, count) in enumerate(sorted(label_counts.items())):
        entry = _text(f"{label} ({count})", font_size, color_for_label(label))
        entry.GetTextProperty().SetJustificationToRight()
        entry.SetDisplayPosition(width - 12, 10 + row * (font_size + 6))
        texts.append(entry)
    return texts


def _title(findings: Findings) -> str:
    detector = _detector(findings)
    return detector.title if detector is not None else f"{findings.detector.capitalize()} findings"


def _text(text: str, font_size: int, rgb) -> vtkTextActor:
    actor = vtkTextActor()
    actor.SetInput(text)
    actor.GetTextProperty().SetFontSize(font_size)
    actor.GetTextProperty().SetColor(*rgb)
    actor.GetTextProperty().ShadowOn()
    return actor


def _anterior_camera(renderer: vtkRenderer, volume_corners_ras: np.ndarray) -> None:
    """Look from anterior (+A) at the volume with superior up, like Slicer's default 3D view."""
    low, high = volume_corners_ras.min(axis=0), volume_corners_ras.max(axis=0)
    center = (low + high) / 2
    camera = renderer.GetActiveCamera()
    camera.SetFocalPoint(*center)
    camera.SetPosition(center[0], center[1] + 4 * (high - low).max(), center[2])
    camera.SetViewUp(0.0, 0.0, 1.0)
    camera.SetViewAngle(15.0)
    renderer.ResetCamera(low[0], high[0], low[1], high[1], low[2], high[2])
    camera.Zoom(1.15)
    renderer.ResetCameraClippingRange()


def _write_png(render_window, path) -> None:
    capture = vtkWindowToImageFilter()
    capture.SetInput(render_window)
    capture.ReadFrontBufferOff()
    capture.Update()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = vtkPNGWriter()
    writer.SetFileName(str(path))
    writer.SetInputConnection(capture.GetOutputPort())
    writer.Write()
    if not path.is_file():
        raise LesionDetectError(f"Could not write the snapshot to {path}; check that the folder is writable.")
