"""Heatmaps as overlay volumes: on the input's grid, heat-coloured, transparent under a threshold."""

from __future__ import annotations

import numpy as np
import slicer
import slicer.util
import vtk

from LesionDetectLib.scene.run_nodes import DETECTOR_ATTRIBUTE, INPUT_VOLUME_ATTRIBUTE

HEATMAP_COLOR_NODE_ID = "vtkMRMLPETProceduralColorNodePET-Heat"
HEATMAP_LOWER_THRESHOLD = 0.05


def heatmap_fraction(heatmap: np.ndarray) -> np.ndarray:
    """A heatmap as float32 0…1: uint8 heatmaps hold percent."""
    heatmap = np.asarray(heatmap)
    if heatmap.dtype == np.uint8:
        return heatmap.astype(np.float32) / 100.0
    return np.clip(heatmap, 0.0, 1.0).astype(np.float32)


def heatmap_volume(heatmap_kji: np.ndarray, ijk_to_ras: np.ndarray, node=None):
    """A scalar volume node (a new one outside the scene unless `node` is given) holding the heatmap 0…1."""
    node = slicer.vtkMRMLScalarVolumeNode() if node is None else node
    node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(np.asarray(ijk_to_ras, dtype=float)))
    slicer.util.updateVolumeFromArray(node, heatmap_fraction(heatmap_kji))
    return node


def style_heatmap(scene, heatmap_node) -> None:
    """Heat colours over 0..1, values under the threshold transparent."""
    if heatmap_node.GetDisplayNode() is None:
        heatmap_node.CreateDefaultDisplayNodes()
    display_node = heatmap_node.GetDisplayNode()
    if scene.GetNodeByID(HEATMAP_COLOR_NODE_ID) is not None:
        display_node.SetAndObserveColorNodeID(HEATMAP_COLOR_NODE_ID)
    display_node.AutoWindowLevelOff()
    display_node.SetWindowLevelMinMax(0.0, 1.0)
    display_node.AutoThresholdOff()
    display_node.SetThreshold(HEATMAP_LOWER_THRESHOLD, 1.0)
    display_node.ApplyThresholdOn()


def add_heatmap_node(scene, name: str, heatmap_kji: np.ndarray, ijk_to_ras: np.ndarray):
    """Heatmap volume on the input's grid, coloured 0..1 with values under the threshold transparent."""
    heatmap_node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    heatmap_volume(heatmap_kji, ijk_to_ras, heatmap_node)
    style_heatmap(scene, heatmap_node)
    return heatmap_node


def show_heatmap_in_slice_views(scene, heatmap_node, opacity: float = 0.5) -> int:
    """Show the heatmap as foreground in every slice view; return the number of views changed."""
    composite_nodes = scene.GetNodesByClass("vtkMRMLSliceCompositeNode")
    for index in range(composite_nodes.GetNumberOfItems()):
        composite_node = composite_nodes.GetItemAsObject(index)
        composite_node.SetForegroundVolumeID(heatmap_node.GetID())
        composite_node.SetForegroundOpacity(opacity)
    return composite_nodes.GetNumberOfItems()


def show_image_in_slice_views(scene, image_node) -> int:
    """Show an image (e.g. a sequence's frame proxy) as background in every slice view; return the count."""
    composite_nodes = scene.GetNodesByClass("vtkMRMLSliceCompositeNode")
    for index in range(composite_nodes.GetNumberOfItems()):
        composite_nodes.GetItemAsObject(index).SetBackgroundVolumeID(image_node.GetID())
    return composite_nodes.GetNumberOfItems()


def show_heatmap_in_3d(scene, heatmap_node, volume_rendering_logic, lowest: float = 0.3):
    """Volume-render the heatmap: clear below `lowest`, then yellow to red and more opaque towards 1."""
    display_node = volume_rendering_logic.CreateDefaultVolumeRenderingNodes(heatmap_node)
    property_node = display_node.GetVolumePropertyNode()
    for attribute in (DETECTOR_ATTRIBUTE, INPUT_VOLUME_ATTRIBUTE):
        property_node.SetAttribute(attribute, heatmap_node.GetAttribute(attribute) or "")
    opacity = vtk.vtkPiecewiseFunction()
    for value, alpha in ((0.0, 0.0), (lowest - 1e-3, 0.0), (lowest, 0.05), (1.0, 0.6)):
        opacity.AddPoint(value, alpha)
    colors = vtk.vtkColorTransferFunction()
    colors.AddRGBPoint(lowest, 1.0, 0.9, 0.0)
    colors.AddRGBPoint(1.0, 1.0, 0.0, 0.0)
    volume_property = property_node.GetVolumeProperty()
    volume_property.SetScalarOpacity(opacity)
    volume_property.SetColor(colors)
    display_node.SetVisibility(True)
    return display_node
