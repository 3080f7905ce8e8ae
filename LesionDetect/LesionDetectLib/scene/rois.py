"""Lesion boxes as markups ROI nodes: on a volume (voxel box) or on a 2D frame (pixel box)."""

from __future__ import annotations

import numpy as np
import slicer
import slicer.util

from LesionDetectLib.detection.findings import Lesion
from LesionDetectLib.results.colors import color_for_label
from LesionDetectLib.scene.run_nodes import DESCRIPTION_ATTRIBUTE, LESION_ID_ATTRIBUTE

ROI_FILL_OPACITY = 0.15


def lesion_name(lesion: Lesion) -> str:
    return f"{lesion.label} {lesion.id}"


def rotation_from_directions(directions_ras: np.ndarray) -> np.ndarray:
    """Nearest proper rotation to the volume's direction columns; flipping an axis leaves a box unchanged."""
    left, _, right = np.linalg.svd(np.asarray(directions_ras, dtype=float))
    rotation = left @ right
    if np.linalg.det(rotation) < 0:
        rotation[:, 2] *= -1
    return rotation


def set_box(roi_node, center_ras, size_mm, directions_ras) -> None:
    """Place a box ROI: centre in RAS, size along the image axes given as RAS direction columns."""
    object_to_node = np.eye(4)
    object_to_node[:3, :3] = rotation_from_directions(directions_ras)
    object_to_node[:3, 3] = center_ras
    roi_node.SetAndObserveObjectToNodeMatrix(slicer.util.vtkMatrixFromArray(object_to_node))
    roi_node.SetSize(*(float(size) for size in size_mm))


def frame_box(box_px, frame_ijk_to_ras: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre RAS, size mm (width, height, one slice), direction columns) of a pixel box on a 2D frame.

    `box_px` is [x0, y0, x1, y1] in pixel-edge coordinates (pixel column c spans x in [c, c + 1]), so
    its centre lies at IJK ((x0 + x1) / 2 − ½, (y0 + y1) / 2 − ½, 0) on the frame's voxel-centred grid.
    """
    x0, y0, x1, y1 = (float(v) for v in box_px)
    matrix = np.asarray(frame_ijk_to_ras, dtype=float)
    center_ijk = np.array([(x0 + x1) / 2 - 0.5, (y0 + y1) / 2 - 0.5, 0.0])
    center_ras = matrix[:3, :3] @ center_ijk + matrix[:3, 3]
    spacing = np.linalg.norm(matrix[:3, :3], axis=0)
    size_mm = np.array([(x1 - x0) * spacing[0], (y1 - y0) * spacing[1], spacing[2]])
    return center_ras, size_mm, matrix[:3, :3] / spacing


def style_roi(roi_node, label: str, detector: str | None = None) -> None:
    """Locked, not interactive, in the label's colour with a faint fill."""
    roi_node.SetLocked(True)
    if roi_node.GetDisplayNode() is None:
        roi_node.CreateDefaultDisplayNodes()
    display_node = roi_node.GetDisplayNode()
    color = color_for_label(label, detector)
    display_node.SetColor(*color)
    display_node.SetSelectedColor(*color)
    display_node.SetHandlesInteractive(False)
    display_node.SetFillOpacity(ROI_FILL_OPACITY)


def add_volume_roi(scene, lesion: Lesion, directions_ras: np.ndarray, detector: str | None = None):
    """A locked ROI box on a volume lesion: centre, size along the volume's i, j, k axes, class colour."""
    roi_node = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", lesion_name(lesion))
    set_box(roi_node, lesion.center_ras, lesion.size_mm, directions_ras)
    roi_node.SetAttribute(LESION_ID_ATTRIBUTE, str(lesion.id))
    style_roi(roi_node, lesion.label, detector)
    return roi_node


def add_frame_roi(scene, lesion: Lesion, frame_ijk_to_ras: np.ndarray, detector: str | None = None):
    """A locked ROI box on a lesion of a 2D image, one slice thick."""
    roi_node = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", lesion_name(lesion))
    set_box(roi_node, *frame_box(lesion.box_px, frame_ijk_to_ras))
    roi_node.SetAttribute(LESION_ID_ATTRIBUTE, str(lesion.id))
    style_roi(roi_node, lesion.label, detector)
    return roi_node


def frame_roi_item(lesion: Lesion | None, frame_ijk_to_ras: np.ndarray, description: str = ""):
    """A sequence item for a box slot: the lesion's box, or an ROI without control points (drawn nowhere:
    Slicer draws an ROI only once it has its centre point) for a frame where the slot has no lesion."""
    roi_node = slicer.vtkMRMLMarkupsROINode()
    if lesion is not None:
        set_box(roi_node, *frame_box(lesion.box_px, frame_ijk_to_ras))
        roi_node.SetName(lesion_name(lesion))
    roi_node.SetAttribute(LESION_ID_ATTRIBUTE, "" if lesion is None else str(lesion.id))
    roi_node.SetAttribute(DESCRIPTION_ATTRIBUTE, description)
    roi_node.SetLocked(True)
    return roi_node
