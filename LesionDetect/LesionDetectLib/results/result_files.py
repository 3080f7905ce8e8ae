"""A run's result files: written from `Findings` by the worker, read back into `Findings` by the panel.

Every file written is named in `report.json["outputs"]`, which is what `--overwrite` replaces.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from LesionDetectLib.detection.findings import Findings, Lesion, ScoreTable
from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.image_sequence import ImageSequence
from LesionDetectLib.io.volume import Volume
from LesionDetectLib.results.markups_json import write_roi_markups
from LesionDetectLib.results.output_folder import REPORT_NAME
from LesionDetectLib.results.report import (
    LOCATION_KEYS,
    report_from_findings,
    write_lesions_csv,
    write_report,
    write_score_table_csv,
)
from LesionDetectLib.results.stl import LESION_FOLDER, read_stl, write_stl_files


def lesion_surface_name(lesion: Lesion) -> str:
    return f"{lesion.label}_{lesion.id:03d}"


def write_results(findings: Findings, folder: Path, stl_coordinate_system: str = "LPS", columns=()) -> dict:
    """Write the report, tables, boxes, surfaces, heatmap and region into `folder`; return the report.

    `columns` are the detector's measurement keys to put first in the lesion table.
    """
    folder = Path(folder)
    outputs = {"report": REPORT_NAME, "lesions_csv": "lesions.csv", "boxes": "boxes.mrk.json"}
    lesion_files = {}
    with_surface = [lesion for lesion in findings.lesions if lesion.surface is not None]
    if with_surface:
        combined = f"{findings.detector}.stl"
        named = [(lesion_surface_name(lesion), lesion.surface) for lesion in with_surface]
        write_stl_files(named, folder, stl_coordinate_system, combined_name=combined)
        lesion_files = {lesion.id: f"{LESION_FOLDER}/{lesion_surface_name(lesion)}.stl" for lesion in with_surface}
        outputs["stl_combined"] = combined
        outputs["stl_lesions"] = list(lesion_files.values())
    for name, array in (("heatmap", findings.heatmap), ("region", findings.region)):
        if array is not None:
            _write_on_input_grid(findings.image, array, name, folder / f"{name}.nrrd")
            outputs[name] = f"{name}.nrrd"
    for table in findings.score_tables:
        outputs[f"{table.axis}_table"] = f"{table.axis}s.csv"
        write_score_table_csv(table, folder / outputs[f"{table.axis}_table"])
    report = report_from_findings(findings, outputs, lesion_files)
    if with_surface:
        report["stl_coordinate_system"] = stl_coordinate_system
    write_roi_markups(findings, folder / "boxes.mrk.json", columns)
    write_lesions_csv(report, folder / "lesions.csv", tuple(column.key for column in columns))
    write_report(report, folder / REPORT_NAME)
    return report


def load_results(folder) -> Findings:
    """Findings from a result folder. The image is geometry only: its pixels are a zero placeholder."""
    folder = Path(folder)
    report_path = folder / REPORT_NAME
    if not report_path.is_file():
        raise LesionDetectError(f"No {REPORT_NAME} in {folder}: not a LesionDetect result folder.")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    image = _image_from_description(report["input"])
    lesions = [_lesion(entry, folder) for entry in report["lesions"]]
    candidates = [_lesion(entry, folder) for entry in report["candidates"]] if "candidates" in report else None
    outputs = report["outputs"]
    heatmap, region = (
        _read_array(folder / outputs[name]) if outputs.get(name) else None for name in ("heatmap", "region")
    )
    return Findings(
        detector=report["detector"],
        method=report["method"],
        image=image,
        lesions=lesions,
        summary=report["summary"],
        candidates=candidates,
        model_version=report["model"]["version"],
        weights_sha256=report["model"]["weights_sha256"],
        device=report["device"],
        heatmap=heatmap,
        region=region,
        probabilities=report.get("probabilities", {}),
        score_tables=[_read_score_table(folder / outputs[key]) for key in outputs if key.endswith("_table")],
        warnings=report.get("warnings", []),
        params=report.get("params", {}),
        timings=report["timings"],
    )


def _lesion(entry: dict, folder: Path) -> Lesion:
    """A lesion from its report entry (its surface read from its STL file)."""
    surface = read_stl(folder / entry["stl"])[0] if entry.get("stl") else None
    located = {key: np.array(entry[key]) for key in ("box_ijk", "center_ras", "size_mm", "box_px") if key in entry}
    return Lesion(
        id=entry["id"],
        label=entry["label"],
        score=entry["score"],
        frame=entry.get("frame"),
        measurements={key: value for key, value in entry.items() if key not in LOCATION_KEYS},
        surface=surface,
        **located,
    )


def _write_on_input_grid(image, array: np.ndarray, name: str, path: Path) -> None:
    """A volume's heatmap/region on its grid; a sequence's per-frame maps as frames stacked along k."""
    from LesionDetectLib.io.volume_io import write_nrrd

    if array.shape != (image.array.shape if isinstance(image, Volume) else image.frames.shape):
        raise LesionDetectError(f"The {name} has shape {array.shape}, which is not the input's grid.")
    ijk_to_ras = image.ijk_to_ras if isinstance(image, Volume) else image.frame_ijk_to_ras()
    write_nrrd(Volume(array, ijk_to_ras, name), path)


def _read_array(path: Path) -> np.ndarray:
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _read_score_table(path: Path) -> ScoreTable:
    import csv

    with path.open(encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    values = np.array([[float(value) for value in row[1:]] for row in rows[1:]]).reshape(len(rows) - 1, -1)
    return ScoreTable(rows[0][0], tuple(rows[0][1:]), values)


def _image_from_description(geometry: dict):
    if geometry.get("kind", "volume") == "volume":
        return Volume(
            np.broadcast_to(np.int16(0), tuple(geometry["shape"][::-1])),
            np.array(geometry["ijk_to_ras"], dtype=float),
            geometry["name"],
            geometry["modality"],
        )
    times = geometry["frame_times_s"]
    spacing = geometry["pixel_spacing_mm"]
    return ImageSequence(
        np.broadcast_to(np.int16(0), (geometry["frames"], geometry["rows"], geometry["columns"])),
        geometry["name"],
        geometry["modality"],
        None if times is None else np.array(times, dtype=float),
        None if spacing is None else tuple(spacing),
    )
