"""Self-test scenarios: plain functions taking a real MRML scene and a scratch folder.

Each detector brings its own (`Detector.scenarios()`); `LesionDetectTest` runs every one of them on
`slicer.mrmlScene` inside Slicer, and pytest runs the same functions on a slicer-core scene in CI,
so the self-test bodies really run.
"""

from __future__ import annotations

import slicer

from LesionDetectLib.io.volume import Volume


def all_scenarios() -> list[tuple[str, object]]:
    """(name, function) of every registered detector's scenarios, detectors in registry order."""
    from LesionDetectLib.detection.registry import detectors

    return [
        (f"{detector_id}.{scenario.__name__}", scenario)
        for detector_id, detector in detectors().items()
        for scenario in detector.scenarios()
    ]


def add_volume_node(scene, volume: Volume):
    """A scalar volume node holding `volume` (a user's loaded scan)."""
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", volume.name)
    node.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(volume.ijk_to_ras))
    slicer.util.updateVolumeFromArray(node, volume.array)
    node.CreateDefaultDisplayNodes()
    return node


def nodes_of_run(scene, volume_node, detector_id: str) -> list:
    """The nodes a run of `detector_id` made for `volume_node` (by their run tags)."""
    nodes = [scene.GetNthNode(n) for n in range(scene.GetNumberOfNodes())]
    return [
        node
        for node in nodes
        if node.GetAttribute("LesionDetect.Detector") == detector_id
        and node.GetAttribute("LesionDetect.InputVolumeID") == volume_node.GetID()
    ]
