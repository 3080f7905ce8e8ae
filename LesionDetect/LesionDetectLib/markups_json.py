"""Lesion boxes as a Slicer markups JSON file (one ROI per lesion, LPS), so they load in Slicer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .colors import color_for_label
from .findings import Findings
from .lesion_text import lesion_description

MARKUPS_SCHEMA = (
    "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/Schema/"
    "markups-schema-v1.0.3.json#"
)
RAS_TO_LPS_3 = np.diag([-1.0, -1.0, 1.0])


def roi_markups(findings: Findings) -> dict:
    """A markups document with one box ROI per lesion, oriented along the input volume's axes."""
    orientation_lps = (RAS_TO_LPS_3 @ findings.volume.directions).ravel().tolist()
    markups = []
    for lesion in findings.lesions:
        center_lps = (RAS_TO_LPS_3 @ lesion.center_ras).tolist()
        markups.append(
            {
                "type": "ROI",
                "coordinateSystem": "LPS",
                "coordinateUnits": "mm",
                "locked": True,
                "labelFormat": f"{lesion.label} {lesion.id}",
                "roiType": "Box",
                "center": center_lps,
                "orientation": orientation_lps,
                "size": lesion.size_mm.tolist(),
                "insideOut": False,
                "controlPoints": [
                    {
                        "id": "1",
                        "label": f"{lesion.label} {lesion.id}",
                        "description": lesion_description(lesion),
                        "position": center_lps,
                        "orientation": orientation_lps,
                        "locked": True,
                        "visibility": True,
                        "positionStatus": "defined",
                    }
                ],
                "display": {
                    "color": list(color_for_label(lesion.label)),
                    "selectedColor": list(color_for_label(lesion.label)),
                },
            }
        )
    return {"@schema": MARKUPS_SCHEMA, "markups": markups}


def write_roi_markups(findings: Findings, path: Path) -> None:
    path.write_text(json.dumps(roi_markups(findings), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
