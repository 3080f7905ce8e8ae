"""The stenosis detector's self-test scenario: a plain function of a real MRML scene and a scratch folder."""

from __future__ import annotations

import slicer.util

from LesionDetectLib.detection.registry import get_detector
from LesionDetectLib.detectors.stenosis.sample import read_sample
from LesionDetectLib.scene import show_findings


def scenario_stenosis_cine_plays_with_heatmap_boxes_and_frame_scores(scene, work_dir) -> None:
    """The shipped model on the bundled cine: the run plays as a sequence with one heatmap and one score row per
    frame; the heat lies on the key frames only; each box is a markups ROI shown on its own frame only."""
    detector = get_detector("stenosis")
    sequence = read_sample()
    findings = detector.run(sequence, detector.Options(), "deep")
    run = show_findings(scene, None, findings)
    frames = len(sequence.frames)
    assert run.sequence_nodes["frames"].GetNumberOfDataNodes() == run.sequence_nodes["heatmap"].GetNumberOfDataNodes()
    assert run.sequence_nodes["frames"].GetNumberOfDataNodes() == frames == run.score_table_node.GetNumberOfRows()
    key = {row["frame"] for row in findings.summary["key_frames"]}
    assert len(key) == 5 and findings.summary["verdict"] in ("stenosis", "normal")
    per_frame = [sum(lesion.frame == frame for lesion in findings.lesions) for frame in range(frames)]
    assert len(run.roi_nodes) == max(per_frame)  # one ROI per box slot, playing along the frames
    hot_frames = set()
    for frame in range(frames):
        run.browser_node.SetSelectedItemNumber(frame)
        if slicer.util.arrayFromVolume(run.heatmap_node).any():
            hot_frames.add(frame)
        assert sum(node.GetNumberOfControlPoints() for node in run.roi_nodes) == per_frame[frame]
    assert hot_frames <= key and (hot_frames or findings.summary["probability"] < 0.05)


SCENARIOS = [scenario_stenosis_cine_plays_with_heatmap_boxes_and_frame_scores]
