"""Lesion boxes as markups ROI nodes: on a volume (voxel box) or on a 2D frame (pixel box)."""

from __future__ import annotations

import numpy as np
import slicer
import slicer.util

from LesionDetectLib.detection.findings import Lesion
from LesionDetectLib.io.image_sequence import frame_box_ras
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
    set_box(roi_node, *frame_box_ras(lesion.box_px, frame_ijk_to_ras))
    roi_node.SetAttribute(LESION_ID_ATTRIBUTE, str(lesion.id))
    style_roi(roi_node, lesion.label, detector)
    return roi_node


def frame_roi_item(lesion: Lesion | None, frame_ijk_to_ras: np.ndarray, description: str = ""):
    """A sequence item for a box slot: the lesion's box, or an ROI without control points (drawn nowhere:
    Slicer draws an ROI only once it has its centre point) for a frame where the slot has no lesion."""
    roi_node = slicer.vtkMRMLMarkupsROINode()
    if lesion is not None:
        set_box(roi_node, *frame_box_ras(lesion.box_px, frame_ijk_to_ras))
        roi_node.SetName(lesion_name(lesion))
    roi_node.SetAttribute(LESION_ID_ATTRIBUTE, "" if lesion is None else str(lesion.id))
    roi_node.SetAttribute(DESCRIPTION_ATTRIBUTE, description)
    roi_node.SetLocked(True)
    return roi_node
