"""`report.json` (versioned JSON Schema in schemas/) and `lesions.csv` from `Findings`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from . import __version__
from .findings import Findings

SCHEMA_PATH = Path(__file__).parent / "schemas" / "report.schema.json"
SCHEMA_VERSION = "1.0.0"


def report_from_findings(findings: Findings, outputs: dict, lesion_files: dict[int, str] | None = None) -> dict:
    """The report dict: geometry of the input, summary, one entry per lesion, the files written."""
    volume = findings.volume
    lesions = []
    for lesion in findings.lesions:
        entry = {
            "id": lesion.id,
            "label": lesion.label,
            "score": lesion.score,
            "center_ras": lesion.center_ras.tolist(),
            "size_mm": lesion.size_mm.tolist(),
            "box_ijk": lesion.box_ijk.tolist(),
            **lesion.measurements,
        }
        if lesion_files and lesion.id in lesion_files:
            entry["stl"] = lesion_files[lesion.id]
        lesions.append(entry)
    return _plain(
        {
            "schema_version": SCHEMA_VERSION,
            "lesiondetect_version": __version__,
            "detector": findings.detector,
            "method": findings.method,
            "model": {"version": findings.model_version, "weights_sha256": findings.weights_sha256},
            "device": findings.device,
            "input": {
                "name": volume.name,
                "shape": list(volume.shape_ijk),
                "spacing": volume.spacing.tolist(),
                "ijk_to_ras": np.asarray(volume.ijk_to_ras).tolist(),
                "modality": volume.modality,
            },
            "summary": findings.summary,
            "lesions": lesions,
            "outputs": outputs,
            "timings": findings.timings,
        }
    )


def validate_report(report: dict) -> None:
    """Raise `jsonschema.ValidationError` if `report` does not follow the schema (needs jsonschema)."""
    import jsonschema

    jsonschema.validate(report, json.loads(SCHEMA_PATH.read_text()))


def write_report(report: dict, path: Path) -> None:
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_lesions_csv(report: dict, path: Path) -> None:
    """One row per lesion: id, label, score, measurements, RAS centre and box size (mm)."""
    fixed = {"id", "label", "score", "center_ras", "size_mm", "box_ijk", "stl", "slices"}
    measurement_keys = [key for lesion in report["lesions"] for key in lesion if key not in fixed]
    measurement_keys = list(dict.fromkeys(measurement_keys))
    header = ["id", "label", "score", *measurement_keys, "first_slice", "last_slice"]
    header += ["center_r", "center_a", "center_s", "size_i_mm", "size_j_mm", "size_k_mm"]
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        for lesion in report["lesions"]:
            slices = lesion.get("slices", ["", ""])
            writer.writerow(
                [lesion["id"], lesion["label"], "" if lesion["score"] is None else lesion["score"]]
                + [lesion.get(key, "") for key in measurement_keys]
                + list(slices)
                + lesion["center_ras"]
                + lesion["size_mm"]
            )


def _plain(value):
    """Numpy scalars and arrays to JSON-native types, recursively."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value
