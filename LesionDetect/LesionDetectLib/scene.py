"""The MRML scene adapter: volume node → `Volume`, `Findings` → nodes in one subject-hierarchy folder.

Works on any real MRML scene passed in (`slicer.mrmlScene` in Slicer, a slicer-core scene in tests).
Every node a run creates carries the attributes `LesionDetect.Detector` and `LesionDetect.InputVolumeID`;
a rerun removes exactly those nodes and never a node the user made, whatever its name or folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import slicer
import slicer.util
import vtk
from scipy import ndimage

from .colors import color_for_label
from .errors import LesionDetectError
from .findings import Findings, Lesion, Surface
from .lesion_text import is_number, lesion_description, table_text
from .meshes import polydata_from_surface, surface_from_polydata
from .regions import box_mask
from .volume import Volume

DETECTOR_ATTRIBUTE = "LesionDetect.Detector"
INPUT_VOLUME_ATTRIBUTE = "LesionDetect.InputVolumeID"
LESION_ID_ATTRIBUTE = "LesionDetect.LesionID"
SUMMARY_ATTRIBUTE = "LesionDetect.Summary"
MODALITY_ATTRIBUTE = "DICOM.Modality"

HEATMAP_COLOR_NODE_ID = "vtkMRMLPETProceduralColorNodePET-Heat"
HEATMAP_LOWER_THRESHOLD = 0.05


# How the ROI description writes well-known measurements; other numbers are written as "key value".
@dataclass
class RunNodes:
    """The nodes one `show_findings` call created."""

    folder_item_id: int
    roi_nodes: list = field(default_factory=list)
    table_node: object = None
    model_nodes: list = field(default_factory=list)
    heatmap_node: object = None


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


def show_findings(scene, volume_node, findings: Findings) -> RunNodes:
    """Replace the previous run of `findings.detector` on this volume with ROIs, table, models, heatmap."""
    if findings.heatmap is not None:
        _check_heatmap_grid(volume_node, findings)
    remove_run(scene, volume_node, findings.detector)
    subject_hierarchy = _subject_hierarchy(scene)
    volume_item_id = subject_hierarchy.GetItemByDataNode(volume_node)
    parent_item_id = (
        subject_hierarchy.GetItemParent(volume_item_id) if volume_item_id else subject_hierarchy.GetSceneItemID()
    )
    folder_name = f"{findings.detector.capitalize()} findings – {volume_node.GetName()}"
    folder_item_id = subject_hierarchy.CreateFolderItem(parent_item_id, folder_name)
    subject_hierarchy.SetItemAttribute(folder_item_id, DETECTOR_ATTRIBUTE, findings.detector)
    subject_hierarchy.SetItemAttribute(folder_item_id, INPUT_VOLUME_ATTRIBUTE, volume_node.GetID())
    summary_json = json.dumps(findings.summary, default=_json_value)
    subject_hierarchy.SetItemAttribute(folder_item_id, SUMMARY_ATTRIBUTE, summary_json)

    run = RunNodes(folder_item_id)
    run.roi_nodes = [_add_roi_node(scene, lesion, findings.volume.directions) for lesion in findings.lesions]
    for roi_node, lesion in zip(run.roi_nodes, findings.lesions):  # only now: resizing an ROI clears descriptions
        roi_node.SetDescription(lesion_description(lesion))
    run.table_node = _add_table_node(scene, findings)
    run.model_nodes = [_add_model_node(scene, lesion) for lesion in findings.lesions if lesion.surface is not None]
    if findings.heatmap is not None:
        run.heatmap_node = _add_heatmap_node(scene, volume_node, findings)
    created = [*run.roi_nodes, run.table_node, *run.model_nodes] + ([run.heatmap_node] if run.heatmap_node else [])
    for node in created:
        node.SetAttribute(DETECTOR_ATTRIBUTE, findings.detector)
        node.SetAttribute(INPUT_VOLUME_ATTRIBUTE, volume_node.GetID())
        _place_in_folder(subject_hierarchy, node, folder_item_id)
    return run


def remove_run(scene, volume_node, detector_id: str) -> int:
    """Remove the nodes a previous run of `detector_id` made for this volume; return how many were removed."""
    run_nodes = _run_nodes(scene, volume_node.GetID(), detector_id)
    subject_hierarchy = _subject_hierarchy(scene)
    folder_item_ids = _run_folder_item_ids(subject_hierarchy, volume_node.GetID(), detector_id)
    for node in run_nodes:
        _remove_with_helper_nodes(scene, node)
    for folder_item_id in folder_item_ids:
        if subject_hierarchy.GetNumberOfItemChildren(folder_item_id) == 0:
            subject_hierarchy.RemoveItem(folder_item_id)
    return len(run_nodes)


def surfaces_from_run(scene, volume_node, detector_id: str) -> list[tuple[str, Surface]]:
    """(model name, surface in RAS) of each model node of the current run, in creation order."""
    return [
        (node.GetName(), surface_from_polydata(node.GetPolyData()))
        for node in _run_nodes(scene, volume_node.GetID(), detector_id)
        if node.IsA("vtkMRMLModelNode")
    ]


def show_heatmap_in_slice_views(scene, heatmap_node, opacity: float = 0.5) -> int:
    """Show the heatmap as foreground in every slice view; return the number of views changed."""
    composite_nodes = scene.GetNodesByClass("vtkMRMLSliceCompositeNode")
    for index in range(composite_nodes.GetNumberOfItems()):
        composite_node = composite_nodes.GetItemAsObject(index)
        composite_node.SetForegroundVolumeID(heatmap_node.GetID())
        composite_node.SetForegroundOpacity(opacity)
    return composite_nodes.GetNumberOfItems()


def heatmap_fraction(heatmap: np.ndarray) -> np.ndarray:
    """A heatmap as float32 0…1: uint8 heatmaps hold percent."""
    heatmap = np.asarray(heatmap)
    if heatmap.dtype == np.uint8:
        return heatmap.astype(np.float32) / 100.0
    return np.clip(heatmap, 0.0, 1.0).astype(np.float32)


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


def _subject_hierarchy(scene):
    subject_hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    if subject_hierarchy is None:
        raise LesionDetectError("The scene has no subject hierarchy; the Subject Hierarchy module is not loaded.")
    return subject_hierarchy


def _place_in_folder(subject_hierarchy, node, folder_item_id: int) -> None:
    """Move the node's item into the folder; create the item where nothing added it (no Slicer GUI)."""
    item_id = subject_hierarchy.GetItemByDataNode(node)
    if item_id:
        subject_hierarchy.SetItemParent(item_id, folder_item_id)
    else:
        subject_hierarchy.CreateItem(folder_item_id, node)


def _is_run_member(get_attribute, volume_id: str, detector_id: str) -> bool:
    return get_attribute(DETECTOR_ATTRIBUTE) == detector_id and get_attribute(INPUT_VOLUME_ATTRIBUTE) == volume_id


def _run_nodes(scene, volume_id: str, detector_id: str) -> list:
    nodes = scene.GetNodes()
    members = []
    for index in range(nodes.GetNumberOfItems()):
        node = nodes.GetItemAsObject(index)
        if _is_run_member(node.GetAttribute, volume_id, detector_id):
            members.append(node)
    return members


def _remove_with_helper_nodes(scene, node) -> None:
    """Remove a node, its subject-hierarchy item, and the display and storage nodes it owns."""
    helper_nodes = []
    if node.IsA("vtkMRMLDisplayableNode"):
        helper_nodes += [node.GetNthDisplayNode(n) for n in range(node.GetNumberOfDisplayNodes())]
    if node.IsA("vtkMRMLStorableNode"):
        helper_nodes += [node.GetNthStorageNode(n) for n in range(node.GetNumberOfStorageNodes())]
    subject_hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    item_id = subject_hierarchy.GetItemByDataNode(node) if subject_hierarchy else 0
    if item_id:  # not every scene drops the item of a removed node itself
        subject_hierarchy.RemoveItem(item_id, False, False)
    scene.RemoveNode(node)
    for helper_node in helper_nodes:
        if helper_node is not None and scene.IsNodePresent(helper_node):
            scene.RemoveNode(helper_node)


def _run_folder_item_ids(subject_hierarchy, volume_id: str, detector_id: str) -> list[int]:
    item_ids = vtk.vtkIdList()
    subject_hierarchy.GetItemChildren(subject_hierarchy.GetSceneItemID(), item_ids, True)
    folder_item_ids = []
    for index in range(item_ids.GetNumberOfIds()):
        item_id = item_ids.GetId(index)
        if subject_hierarchy.GetItemDataNode(item_id) is None and _is_run_member(
            lambda name, item_id=item_id: subject_hierarchy.GetItemAttribute(item_id, name), volume_id, detector_id
        ):
            folder_item_ids.append(item_id)
    return folder_item_ids


def _lesion_name(lesion: Lesion) -> str:
    return f"{lesion.label} {lesion.id}"


def _rotation_from_directions(directions_ras: np.ndarray) -> np.ndarray:
    """Nearest proper rotation to the volume's direction columns; flipping an axis leaves a box unchanged."""
    left, _, right = np.linalg.svd(np.asarray(directions_ras, dtype=float))
    rotation = left @ right
    if np.linalg.det(rotation) < 0:
        rotation[:, 2] *= -1
    return rotation


def _add_roi_node(scene, lesion: Lesion, directions_ras: np.ndarray):
    """A locked ROI box on the lesion: centre, size along the volume's i, j, k axes, class colour."""
    roi_node = scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", _lesion_name(lesion))
    object_to_node = np.eye(4)
    object_to_node[:3, :3] = _rotation_from_directions(directions_ras)
    object_to_node[:3, 3] = lesion.center_ras
    roi_node.SetAndObserveObjectToNodeMatrix(slicer.util.vtkMatrixFromArray(object_to_node))
    roi_node.SetSize(*(float(size) for size in lesion.size_mm))
    roi_node.SetAttribute(LESION_ID_ATTRIBUTE, str(lesion.id))
    roi_node.SetLocked(True)
    display_node = roi_node.GetDisplayNode()
    color = color_for_label(lesion.label)
    display_node.SetColor(*color)
    display_node.SetSelectedColor(*color)
    display_node.SetHandlesInteractive(False)
    display_node.SetFillOpacity(0.15)
    return roi_node


def _add_table_node(scene, findings: Findings):
    """One row per lesion: id, label, score, artery, every measurement (union of keys), centre R/A/S."""
    table_node = scene.AddNewNodeByClass("vtkMRMLTableNode", f"{findings.detector} lesions")
    lesions = findings.lesions
    keys = list(dict.fromkeys(key for lesion in lesions for key in lesion.measurements))
    if "artery" in keys:
        keys.remove("artery")
        keys.insert(0, "artery")
    columns = [
        ("id", [lesion.id for lesion in lesions]),
        ("label", [lesion.label for lesion in lesions]),
        ("score", [lesion.score for lesion in lesions]),
        *((key, [lesion.measurements.get(key) for lesion in lesions]) for key in keys),
        *((f"center {axis}", [lesion.center_ras[n] for lesion in lesions]) for n, axis in enumerate("RAS")),
    ]
    table = vtk.vtkTable()
    for name, values in columns:
        table.AddColumn(_column_array(name, values))
    table_node.SetAndObserveTable(table)
    for axis in "RAS":
        table_node.SetColumnUnitLabel(f"center {axis}", "mm")
    return table_node


def _column_array(name: str, values: list) -> vtk.vtkAbstractArray:
    """Integer, double (NaN where missing) or string column, whichever holds all `values`."""
    present = [value for value in values if value is not None]
    if present and all(is_number(value) for value in present):
        if len(present) == len(values) and all(isinstance(value, (int, np.integer)) for value in present):
            array = vtk.vtkIntArray()
            for value in values:
                array.InsertNextValue(int(value))
        else:
            array = vtk.vtkDoubleArray()
            for value in values:
                array.InsertNextValue(np.nan if value is None else float(value))
    else:
        array = vtk.vtkStringArray()
        for value in values:
            array.InsertNextValue(table_text(value))
    array.SetName(name)
    return array


def _add_model_node(scene, lesion: Lesion):
    """The lesion's surface as a model shown in 3D and as outlines in slice views."""
    model_node = scene.AddNewNodeByClass("vtkMRMLModelNode", f"{_lesion_name(lesion)} surface")
    normals = vtk.vtkPolyDataNormals()  # smooth shading; points and triangles stay as they are
    normals.SetInputData(polydata_from_surface(lesion.surface))
    normals.SplittingOff()
    normals.ConsistencyOff()
    normals.Update()
    model_node.SetAndObservePolyData(normals.GetOutput())
    model_node.SetAttribute(LESION_ID_ATTRIBUTE, str(lesion.id))
    model_node.CreateDefaultDisplayNodes()
    display_node = model_node.GetDisplayNode()
    display_node.SetColor(*color_for_label(lesion.label))
    display_node.SetVisibility(True)
    display_node.SetVisibility3D(True)
    display_node.SetVisibility2D(True)
    return model_node


def _check_heatmap_grid(volume_node, findings: Findings) -> None:
    expected_shape = tuple(volume_node.GetImageData().GetDimensions()[::-1])
    if np.shape(findings.heatmap) != expected_shape:
        raise LesionDetectError(
            f"The {findings.detector} heatmap has shape {np.shape(findings.heatmap)} but the volume has "
            f"{expected_shape}; the detector must return the heatmap on the input grid."
        )


def _add_heatmap_node(scene, volume_node, findings: Findings):
    """Heatmap volume on the input's grid, coloured 0..1 with values under the threshold transparent."""
    heatmap = np.asarray(findings.heatmap)
    heatmap_node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", f"{findings.detector} heatmap")
    heatmap_node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(ijk_to_world_matrix(volume_node)))
    slicer.util.updateVolumeFromArray(heatmap_node, heatmap_fraction(heatmap))
    heatmap_node.CreateDefaultDisplayNodes()
    display_node = heatmap_node.GetDisplayNode()
    if scene.GetNodeByID(HEATMAP_COLOR_NODE_ID) is not None:
        display_node.SetAndObserveColorNodeID(HEATMAP_COLOR_NODE_ID)
    display_node.AutoWindowLevelOff()
    display_node.SetWindowLevelMinMax(0.0, 1.0)
    display_node.AutoThresholdOff()
    display_node.SetThreshold(HEATMAP_LOWER_THRESHOLD, 1.0)
    display_node.ApplyThresholdOn()
    return heatmap_node


def _json_value(value):
    """numpy scalars and arrays in the summary as plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


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
