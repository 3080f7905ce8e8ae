"""Lesion surfaces as model nodes, and reading them back for STL export."""

from __future__ import annotations

import vtk

from LesionDetectLib.detection.findings import Lesion, Surface
from LesionDetectLib.results.colors import color_for_label
from LesionDetectLib.results.meshes import polydata_from_surface, surface_from_polydata
from LesionDetectLib.scene.rois import lesion_name
from LesionDetectLib.scene.run_nodes import LESION_ID_ATTRIBUTE, input_key, tagged_nodes


def add_model_node(scene, lesion: Lesion, detector: str | None = None):
    """The lesion's surface as a model shown in 3D and as outlines in slice views."""
    model_node = scene.AddNewNodeByClass("vtkMRMLModelNode", f"{lesion_name(lesion)} surface")
    normals = vtk.vtkPolyDataNormals()  # smooth shading; points and triangles stay as they are
    normals.SetInputData(polydata_from_surface(lesion.surface))
    normals.SplittingOff()
    normals.ConsistencyOff()
    normals.Update()
    model_node.SetAndObservePolyData(normals.GetOutput())
    model_node.SetAttribute(LESION_ID_ATTRIBUTE, str(lesion.id))
    model_node.CreateDefaultDisplayNodes()
    display_node = model_node.GetDisplayNode()
    display_node.SetColor(*color_for_label(lesion.label, detector))
    display_node.SetVisibility(True)
    display_node.SetVisibility3D(True)
    display_node.SetVisibility2D(True)
    return model_node


def surfaces_from_run(scene, input_node, detector_id: str) -> list[tuple[str, Surface]]:
    """(model name, surface in RAS) of each model node of the current run, in creation order."""
    return [
        (node.GetName(), surface_from_polydata(node.GetPolyData()))
        for node in tagged_nodes(scene, input_key(input_node), detector_id)
        if node.IsA("vtkMRMLModelNode")
    ]
