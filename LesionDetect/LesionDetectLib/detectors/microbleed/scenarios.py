"""The microbleed detector's self-test scenario: a plain function of a real MRML scene and a scratch folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from LesionDetectLib.app.cli import main as run_cli
from LesionDetectLib.app.detection_run import import_results, show_results
from LesionDetectLib.detection.registry import get_detector
from LesionDetectLib.detectors.microbleed.sample import read_sample
from LesionDetectLib.io.volume_io import write_nrrd
from LesionDetectLib.scenarios import add_volume_node, nodes_of_run
from LesionDetectLib.scene import volume_from_node


def rois_and_table(scene, volume_node) -> tuple[list, object]:
    nodes = nodes_of_run(scene, volume_node, "microbleed")
    table = next(node for node in nodes if node.IsA("vtkMRMLTableNode"))
    return [node for node in nodes if node.IsA("vtkMRMLMarkupsROINode")], table


def scenario_microbleed_results_show_and_the_sensitivity_refilters_them(scene, work_dir) -> None:
    """The panel's path on the bundled SWI: node → NRRD → worker CLI → one ROI and one table row per microbleed;
    a higher sensitivity, applied live to the same findings, shows at least as many, with no rerun."""
    work_dir = Path(work_dir)
    volume_node = add_volume_node(scene, read_sample())
    write_nrrd(volume_from_node(volume_node), work_dir / "input.nrrd")
    arguments = ["microbleed", str(work_dir / "input.nrrd"), "-o", str(work_dir / "out"), "--progress", "none"]
    assert run_cli([*arguments, "--no-snapshot"]) == 0, "lesiondetect failed"
    findings = import_results(scene, work_dir / "out", volume_node)
    rois, table = rois_and_table(scene, volume_node)
    assert len(rois) == table.GetNumberOfRows() == len(findings.lesions) >= 1
    detector = get_detector("microbleed")
    options = dataclasses.replace(detector.Options(), sensitivity=0.99)
    looser = detector.refiltered(findings, options)
    show_results(scene, looser, volume_node)
    more_rois, more_table = rois_and_table(scene, volume_node)
    assert len(more_rois) == more_table.GetNumberOfRows() == len(looser.lesions) >= len(findings.lesions)
    assert len(looser.lesions) + len(looser.candidates) == len(findings.lesions) + len(findings.candidates)


SCENARIOS = [scenario_microbleed_results_show_and_the_sensitivity_refilters_them]
