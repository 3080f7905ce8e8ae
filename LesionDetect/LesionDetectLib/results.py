"""A run's result files: written from `Findings` by the worker, read back into `Findings` by the panel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import LesionDetectError
from .findings import Findings, Lesion
from .markups_json import write_roi_markups
from .report import report_from_findings, write_lesions_csv, write_report
from .stl import LESION_FOLDER, read_stl, write_stl_files
from .volume import Volume


def lesion_surface_name(lesion: Lesion) -> str:
    return f"{lesion.label}_{lesion.id:03d}"


def write_results(findings: Findings, folder: Path, stl_coordinate_system: str = "LPS") -> dict:
    """Write report.json, lesions.csv, boxes.mrk.json and the STL files into `folder`; return the report."""
    folder = Path(folder)
    outputs = {"report": "report.json", "lesions_csv": "lesions.csv", "boxes": "boxes.mrk.json"}
    lesion_files = {}
    with_surface = [lesion for lesion in findings.lesions if lesion.surface is not None]
    if with_surface:
        combined = f"{findings.detector}.stl"
        named = [(lesion_surface_name(lesion), lesion.surface) for lesion in with_surface]
        write_stl_files(named, folder, stl_coordinate_system, combined_name=combined)
        outputs["stl_combined"] = combined
        outputs["stl_coordinate_system"] = stl_coordinate_system
        lesion_files = {lesion.id: f"{LESION_FOLDER}/{lesion_surface_name(lesion)}.stl" for lesion in with_surface}
    if findings.heatmap is not None:
        from .volume_io import write_nrrd

        write_nrrd(Volume(findings.heatmap, findings.volume.ijk_to_ras, "heatmap"), folder / "heatmap.nrrd")
        outputs["heatmap"] = "heatmap.nrrd"
    if findings.region is not None:
        from .volume_io import write_nrrd

        write_nrrd(Volume(findings.region, findings.volume.ijk_to_ras, "region"), folder / "region.nrrd")
        outputs["region"] = "region.nrrd"
    report = report_from_findings(findings, outputs, lesion_files)
    write_roi_markups(findings, folder / "boxes.mrk.json")
    write_lesions_csv(report, folder / "lesions.csv")
    write_report(report, folder / "report.json")
    return report


def load_results(folder) -> Findings:
    """Findings from a result folder. The volume is geometry only: its array is a zero placeholder."""
    folder = Path(folder)
    report_path = folder / "report.json"
    if not report_path.is_file():
        raise LesionDetectError(f"No report.json in {folder}: not a LesionDetect result folder.")
    report = json.loads(report_path.read_text(encoding="utf-8"))
    geometry = report["input"]
    volume = Volume(
        np.broadcast_to(np.int16(0), tuple(geometry["shape"][::-1])),
        np.array(geometry["ijk_to_ras"], dtype=float),
        geometry["name"],
        geometry["modality"],
    )
    fixed = {"id", "label", "score", "center_ras", "size_mm", "box_ijk", "stl"}
    lesions = []
    for entry in report["lesions"]:
        surface = read_stl(folder / entry["stl"])[0] if entry.get("stl") else None
        lesions.append(
            Lesion(
                id=entry["id"],
                label=entry["label"],
                box_ijk=np.array(entry["box_ijk"]),
                center_ras=np.array(entry["center_ras"]),
                size_mm=np.array(entry["size_mm"]),
                score=entry["score"],
                measurements={key: value for key, value in entry.items() if key not in fixed},
                surface=surface,
            )
        )
    from .volume_io import read_volume

    heatmap, region = (
        read_volume(folder / report["outputs"][name]).array if report["outputs"].get(name) else None
        for name in ("heatmap", "region")
    )
    return Findings(
        detector=report["detector"],
        method=report["method"],
        volume=volume,
        lesions=lesions,
        summary=report["summary"],
        model_version=report["model"]["version"],
        weights_sha256=report["model"]["weights_sha256"],
        device=report["device"],
        heatmap=heatmap,
        region=region,
        timings=report["timings"],
    )
