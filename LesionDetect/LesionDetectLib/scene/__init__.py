"""The MRML scene adapter: input nodes → images, `Findings` → nodes in one subject-hierarchy folder.

`show_findings` picks the presenter by what the findings are on: a volume (ROIs, table, models, heatmap;
`volume_presenter`) or an image sequence / 2D image (a sequence browser with frames, heatmaps, boxes and
scores per frame, or plain nodes for one image; `sequence_presenter`). Every node a run makes is tagged
(`run_nodes`), so a rerun replaces exactly them and never a node the user made.
"""

from __future__ import annotations

from LesionDetectLib.detection.findings import Findings
from LesionDetectLib.io.volume import Volume
from LesionDetectLib.scene.heatmap import (
    heatmap_fraction,
    show_heatmap_in_3d,
    show_heatmap_in_slice_views,
    show_image_in_slice_views,
)
from LesionDetectLib.scene.inputs import ijk_to_world_matrix, region_mask_from_node, volume_from_node
from LesionDetectLib.scene.models import surfaces_from_run
from LesionDetectLib.scene.run_nodes import (
    DETECTOR_ATTRIBUTE,
    INPUT_NODE_ATTRIBUTE,
    INPUT_VOLUME_ATTRIBUTE,
    LESION_ID_ATTRIBUTE,
    SUMMARY_ATTRIBUTE,
    RunNodes,
    remove_run,
)
from LesionDetectLib.scene.sequence_presenter import image_sequence_from_node, show_sequence_findings
from LesionDetectLib.scene.volume_presenter import show_findings as show_volume_findings


def show_findings(scene, input_node, findings: Findings, columns=None, sequences_logic=None) -> RunNodes:
    """Replace the previous run of `findings.detector` on `input_node` with nodes showing `findings`.

    Volume findings need the volume node they were computed on. Sequence / 2D findings take the node the
    frames came from (a browser, sequence, proxy or 2D volume: reused when it holds them) or None.
    `columns`: the measurement columns (default: the detector's, from the registry); `sequences_logic`:
    the Sequences module logic (default: Slicer's, or one made for this scene).
    """
    if isinstance(findings.image, Volume):
        return show_volume_findings(scene, input_node, findings, columns=columns)
    return show_sequence_findings(scene, input_node, findings, columns=columns, sequences_logic=sequences_logic)


__all__ = [
    "DETECTOR_ATTRIBUTE",
    "INPUT_NODE_ATTRIBUTE",
    "INPUT_VOLUME_ATTRIBUTE",
    "LESION_ID_ATTRIBUTE",
    "SUMMARY_ATTRIBUTE",
    "RunNodes",
    "heatmap_fraction",
    "ijk_to_world_matrix",
    "image_sequence_from_node",
    "region_mask_from_node",
    "remove_run",
    "show_findings",
    "show_heatmap_in_3d",
    "show_heatmap_in_slice_views",
    "show_image_in_slice_views",
    "show_sequence_findings",
    "show_volume_findings",
    "surfaces_from_run",
    "volume_from_node",
]
