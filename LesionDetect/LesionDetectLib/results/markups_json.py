"""Lesion boxes as a Slicer markups JSON file (one ROI per lesion, LPS), so they load in Slicer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from LesionDetectLib.detection.findings import Findings, Lesion
from LesionDetectLib.io.image_sequence import frame_box_ras
from LesionDetectLib.results.colors import color_for_label
from LesionDetectLib.results.lesion_text import lesion_description

MARKUPS_SCHEMA = (
    "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/Schema/"
    "markups-schema-v1.0.3.json#"
)
RAS_TO_LPS_3 = np.diag([-1.0, -1.0, 1.0])


def roi_markups(findings: Findings, columns=()) -> dict:
    """A markups document with one box ROI per lesion: oriented along a volume's axes, or on its frame's plane."""
    return {"@schema": MARKUPS_SCHEMA, "markups": [_roi(findings, lesion, columns) for lesion in findings.lesions]}


def lesion_box_ras(findings: Findings, lesion: Lesion) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre RAS, size mm, axis directions as RAS columns) of a lesion's box."""
    if lesion.frame is not None:
        return frame_box_ras(lesion.box_px, findings.image.frame_ijk_to_ras())
    return np.asarray(lesion.center_ras, float), np.asarray(lesion.size_mm, float), findings.volume.directions


def _roi(findings: Findings, lesion: Lesion, columns) -> dict:
    center_ras, size_mm, directions_ras = lesion_box_ras(findings, lesion)
    orientation_lps = (RAS_TO_LPS_3 @ directions_ras).ravel().tolist()
    center_lps = (RAS_TO_LPS_3 @ center_ras).tolist()
    name = f"{lesion.label} {lesion.id}"
    description = lesion_description(lesion, columns)
    if lesion.frame is not None:
        description = f"frame {lesion.frame}" + (f", {description}" if description else "")
    color = list(color_for_label(lesion.label))
    return {
        "type": "ROI",
        "coordinateSystem": "LPS",
        "coordinateUnits": "mm",
        "locked": True,
        "labelFormat": name,
        "roiType": "Box",
        "center": center_lps,
        "orientation": orientation_lps,
        "size": size_mm.tolist(),
        "insideOut": False,
        "controlPoints": [
            {
                "id": "1",
                "label": name,
                "description": description,
                "position": center_lps,
                "orientation": orientation_lps,
                "locked": True,
                "visibility": True,
                "positionStatus": "defined",
            }
        ],
        "display": {"color": color, "selectedColor": color},
    }


def write_roi_markups(findings: Findings, path: Path, columns=()) -> None:
    path.write_text(json.dumps(roi_markups(findings, columns), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
