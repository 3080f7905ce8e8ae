"""Reading input nodes: a volume node as a `Volume` (world geometry), a region node as a mask on its grid."""

from __future__ import annotations

import numpy as np
import slicer
import slicer.util
import vtk
from scipy import ndimage

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.regions import box_mask
from LesionDetectLib.io.volume import Volume
from LesionDetectLib.scene.run_nodes import MODALITY_ATTRIBUTE


def ijk_to_world_matrix(volume_node) -> np.ndarray:
    """IJK→RAS (world) of a volume node, through its parent transform if that is linear."""
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    ijk_to_ras = slicer.util.arrayFromVTKMatrix(matrix)
    transform_node = volume_node.GetParentTransformNode()
    if transform_node is None:
        return ijk_to_ras
    if not transform_node.IsTransformToWorldLinear():
        raise LesionDetectError(
            f"'{volume_node.GetName()}' is under the non-linear transform '{transform_node.GetName()}'; "
            "harden the transform (Data module, right-click → Harden transform) or remove it, then run again."
        )
    to_world = vtk.vtkMatrix4x4()
    transform_node.GetMatrixTransformToWorld(to_world)
    return slicer.util.arrayFromVTKMatrix(to_world) @ ijk_to_ras


def volume_from_node(volume_node) -> Volume:
    """The node's voxels (a view, no copy) with its world IJK→RAS, name and DICOM modality if known."""
    if volume_node is None or not volume_node.IsA("vtkMRMLScalarVolumeNode"):
        raise LesionDetectError("Select a scalar volume (for example a CT) as input.")
    if volume_node.GetImageData() is None:
        raise LesionDetectError(f"'{volume_node.GetName()}' has no image data; load the volume again.")
    array = slicer.util.arrayFromVolume(volume_node)
    return Volume(array, ijk_to_world_matrix(volume_node), volume_node.GetName(), _modality(volume_node))


def _modality(volume_node) -> str | None:
    """`DICOM.Modality` from the node, else from its subject-hierarchy item (where DICOM import puts it)."""
    modality = volume_node.GetAttribute(MODALITY_ATTRIBUTE)
    scene = volume_node.GetScene()
    if not modality and scene is not None:
        subject_hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
        item_id = subject_hierarchy.GetItemByDataNode(volume_node) if subject_hierarchy else 0
        if item_id:
            modality = subject_hierarchy.GetItemAttribute(item_id, MODALITY_ATTRIBUTE)
    return modality or None


def region_mask_from_node(node, volume_node) -> np.ndarray:
    """uint8 (k, j, i) mask on the volume's grid from a labelmap, segmentation or markups ROI node."""
    if node is None:
        raise LesionDetectError("No region node given.")
    if node.IsA("vtkMRMLSegmentationNode"):
        return _mask_from_segmentation(node, volume_node)
    if node.IsA("vtkMRMLMarkupsROINode"):
        return _mask_from_roi(node, volume_node)
    if node.IsA("vtkMRMLScalarVolumeNode"):
        return _mask_from_labelmap(node, volume_node)
    raise LesionDetectError(
        f"'{node.GetName()}' ({node.GetClassName()}) cannot be used as a region; "
        "choose a segmentation, a labelmap volume or a markups ROI."
    )


def _mask_from_labelmap(labelmap_node, volume_node) -> np.ndarray:
    """Nonzero voxels of a volume node, resampled nearest-neighbour onto the input grid if needed."""
    if labelmap_node.GetImageData() is None:
        raise LesionDetectError(f"'{labelmap_node.GetName()}' has no image data.")
    source_kji = slicer.util.arrayFromVolume(labelmap_node)
    source_to_world = ijk_to_world_matrix(labelmap_node)
    target_to_world = ijk_to_world_matrix(volume_node)
    target_shape_kji = tuple(volume_node.GetImageData().GetDimensions()[::-1])
    if source_kji.shape == target_shape_kji and np.allclose(source_to_world, target_to_world, atol=1e-4):
        return (source_kji != 0).astype(np.uint8)
    target_to_source_ijk = np.linalg.inv(source_to_world) @ target_to_world
    reverse = np.eye(4)[[2, 1, 0, 3]]  # (i, j, k) ↔ (k, j, i)
    target_to_source_kji = reverse @ target_to_source_ijk @ reverse
    return ndimage.affine_transform(
        (source_kji != 0).astype(np.uint8),
        target_to_source_kji[:3, :3],
        offset=target_to_source_kji[:3, 3],
        output_shape=target_shape_kji,
        order=0,
        mode="constant",
        cval=0,
    )


def _mask_from_segmentation(segmentation_node, volume_node) -> np.ndarray:
    """All segments of a segmentation, exported onto the input volume's grid."""
    segment_ids = vtk.vtkStringArray()
    segmentation_node.GetSegmentation().GetSegmentIDs(segment_ids)
    if segment_ids.GetNumberOfValues() == 0:
        raise LesionDetectError(f"'{segmentation_node.GetName()}' has no segments; paint a region first.")
    scene = segmentation_node.GetScene()
    node_ids_before = _node_ids(scene)
    labelmap_node = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "LesionDetect region (temporary)")
    try:
        exported = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
            segmentation_node, segment_ids, labelmap_node, volume_node, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY
        )
        if not exported:
            raise LesionDetectError(f"Could not convert '{segmentation_node.GetName()}' to a labelmap.")
        return _mask_from_labelmap(labelmap_node, volume_node)
    finally:  # the labelmap and whatever the export added with it (display node, colour table)
        for node_id in _node_ids(scene) - node_ids_before:
            if scene.GetNodeByID(node_id) is not None:
                scene.RemoveNode(scene.GetNodeByID(node_id))


def _node_ids(scene) -> set[str]:
    nodes = scene.GetNodes()
    return {nodes.GetItemAsObject(index).GetID() for index in range(nodes.GetNumberOfItems())}


def _mask_from_roi(roi_node, volume_node) -> np.ndarray:
    """Voxels whose centres lie inside the (possibly rotated) ROI box."""
    object_to_world = slicer.util.arrayFromVTKMatrix(roi_node.GetObjectToWorldMatrix())
    half_size = np.asarray(roi_node.GetSize(), dtype=float) / 2
    ijk_to_object = np.linalg.inv(object_to_world) @ ijk_to_world_matrix(volume_node)
    shape_ijk = volume_node.GetImageData().GetDimensions()
    return box_mask(tuple(shape_ijk[::-1]), ijk_to_object, half_size)
