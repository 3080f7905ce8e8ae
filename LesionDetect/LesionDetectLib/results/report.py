"""`report.json` (the base JSON Schema in schemas/ plus the detector's fragment) and the CSV tables.

The base schema covers every detector: the input (a volume, a 2D image or a sequence), the run's
options, lesions located in a volume or on a frame, probabilities, warnings and every file written.
A detector's fragment constrains its own summary and lesion measurements.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from LesionDetectLib import __version__
from LesionDetectLib.detection.findings import Findings, ScoreTable
from LesionDetectLib.io.volume import Volume

SCHEMA_PATH = Path(__file__).parent / "schemas" / "report.schema.json"
SCHEMA_VERSION = "1.1.0"
LOCATION_KEYS = ("id", "label", "score", "frame", "box_px", "center_ras", "size_mm", "box_ijk", "stl")


def report_from_findings(findings: Findings, outputs: dict, lesion_files: dict[int, str] | None = None) -> dict:
    """The report dict: the input, options, summary, one entry per lesion, the files written."""
    lesions = [_lesion_entry(lesion, lesion_files) for lesion in findings.lesions]
    report = {
        "schema_version": SCHEMA_VERSION,
        "lesiondetect_version": __version__,
        "detector": findings.detector,
        "method": findings.method,
        "model": {"version": findings.model_version, "weights_sha256": findings.weights_sha256},
        "device": findings.device,
        "input": input_description(findings.image),
        "params": findings.params,
        "summary": findings.summary,
        "probabilities": findings.probabilities,
        "warnings": findings.warnings,
        "lesions": lesions,
        **({"candidates": [_lesion_entry(c) for c in findings.candidates]} if findings.candidates is not None else {}),
        "outputs": outputs,
        "timings": findings.timings,
    }
    return _plain(report)


def _lesion_entry(lesion, lesion_files: dict[int, str] | None = None) -> dict:
    """A lesion's report entry: id, label, score, where it is, its measurements, its STL file."""
    entry = {"id": lesion.id, "label": lesion.label, "score": lesion.score}
    if lesion.frame is not None:
        entry["frame"] = lesion.frame
        entry["box_px"] = lesion.box_px
    if lesion.center_ras is not None:
        entry["center_ras"] = lesion.center_ras
    if lesion.size_mm is not None:
        entry["size_mm"] = lesion.size_mm
    if lesion.box_ijk is not None:
        entry["box_ijk"] = lesion.box_ijk
    entry.update(lesion.measurements)
    if lesion_files and lesion.id in lesion_files:
        entry["stl"] = lesion_files[lesion.id]
    return entry


def input_description(image) -> dict:
    """Geometry of the input: voxel grid and IJK→RAS for a volume; frames, size, spacing and times otherwise."""
    if isinstance(image, Volume):
        return {
            "kind": "volume",
            "name": image.name,
            "shape": list(image.shape_ijk),
            "spacing": image.spacing.tolist(),
            "ijk_to_ras": np.asarray(image.ijk_to_ras).tolist(),
            "modality": image.modality,
        }
    rows, columns = image.frame_shape
    return {
        "kind": "image" if image.is_single_image else "sequence",
        "name": image.name,
        "frames": image.frame_count,
        "rows": rows,
        "columns": columns,
        "pixel_spacing_mm": None if image.pixel_spacing_mm is None else list(image.pixel_spacing_mm),
        "frame_times_s": None if image.frame_times_s is None else np.asarray(image.frame_times_s).tolist(),
        "modality": image.modality,
    }


def report_schema(detector_id: str | None = None) -> dict:
    """The base schema, combined with the detector's fragment when it has one."""
    base = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    if detector_id is None:
        return base
    from LesionDetectLib.detection.registry import get_detector

    fragment_path = get_detector(detector_id).schema_fragment
    if fragment_path is None:
        return base
    return {"allOf": [base, json.loads(Path(fragment_path).read_text(encoding="utf-8"))]}


def validate_report(report: dict) -> None:
    """Raise `jsonschema.ValidationError` if `report` breaks the base schema or its detector's fragment."""
    import jsonschema

    jsonschema.validate(report, report_schema(report.get("detector")))


def write_report(report: dict, path: Path) -> None:
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_lesions_csv(report: dict, path: Path, column_keys: tuple[str, ...] = ()) -> None:
    """One row per lesion: id, label, score, the detector's columns then other measurements, location."""
    measurement_keys = [key for lesion in report["lesions"] for key in lesion if key not in LOCATION_KEYS]
    measurement_keys = [key for key in column_keys if key in measurement_keys] + [
        key for key in dict.fromkeys(measurement_keys) if key not in column_keys
    ]
    pairs = {key for key in measurement_keys if all(_is_pair(lesion.get(key)) for lesion in report["lesions"])}
    header = ["id", "label", "score"]
    for key in measurement_keys:
        header += [f"{key}_first", f"{key}_last"] if key in pairs else [key]
    located_on_frames = any("frame" in lesion for lesion in report["lesions"])
    if located_on_frames:
        header += ["frame", "x0_px", "y0_px", "x1_px", "y1_px"]
    located_in_volume = any("center_ras" in lesion for lesion in report["lesions"]) or not located_on_frames
    if located_in_volume:
        header += ["center_r", "center_a", "center_s", "size_i_mm", "size_j_mm", "size_k_mm"]
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        for lesion in report["lesions"]:
            row = [lesion["id"], lesion["label"], "" if lesion["score"] is None else lesion["score"]]
            for key in measurement_keys:
                value = lesion.get(key)
                row += list(value) if key in pairs else ["" if value is None else value]
            if located_on_frames:
                row += [lesion.get("frame", "")] + list(lesion.get("box_px", ["", "", "", ""]))
            if located_in_volume:
                row += list(lesion.get("center_ras", ["", "", ""])) + list(lesion.get("size_mm", ["", "", ""]))
            writer.writerow(row)


def write_score_table_csv(table: ScoreTable, path: Path) -> None:
    """One row per slice or frame, one column per label."""
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow([table.axis, *table.labels])
        for index, row in enumerate(np.asarray(table.values, dtype=float)):
            writer.writerow([index, *(f"{value:.6g}" for value in row)])


def _is_pair(value) -> bool:
    return isinstance(value, (list, tuple, np.ndarray)) and len(value) == 2


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
