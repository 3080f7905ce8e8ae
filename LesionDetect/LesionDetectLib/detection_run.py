"""What the panel's Detect and Export STL buttons do, without Qt: start the worker on a scene volume,
import its result folder into the scene, export the run's surfaces, and word its summary.
"""

from __future__ import annotations

import shutil
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LesionDetectError
from .findings import Findings
from .worker_process import WorkerProcess, worker_command

LOG_TAIL_LINES = 20


@dataclass
class DetectionRun:
    """One worker run: the process, the folder it owns, and what its events said so far."""

    worker: WorkerProcess
    work_dir: Path
    output_dir: Path
    volume_node: object
    detector: str
    done_event: dict | None = None
    error_message: str | None = None
    log_tail: deque = field(default_factory=lambda: deque(maxlen=LOG_TAIL_LINES))

    def record(self, event: dict) -> None:
        """Keep what the end of the run needs: the done event, the error message, the last log lines."""
        kind = event.get("event")
        if kind == "done":
            self.done_event = event
        elif kind == "error":
            self.error_message = event.get("message", "")
        elif kind == "log":
            self.log_tail.append(event.get("message", ""))

    def discard(self) -> None:
        """Remove the temporary input and result files (after importing, or instead of it)."""
        shutil.rmtree(self.work_dir, ignore_errors=True)


def start_detection(
    volume_node,
    work_dir,
    *,
    detector: str = "calcium",
    method: str = "classical",
    device: str = "auto",
    region_node=None,
    python: str | None = None,
) -> DetectionRun:
    """Write the volume (and region mask) as NRRD into `work_dir` and start the CLI on them.

    The run owns `work_dir`: it is removed here if starting fails, and by `DetectionRun.discard()`.
    """
    from .scene import region_mask_from_node, volume_from_node
    from .volume import Volume
    from .volume_io import write_nrrd

    work_dir = Path(work_dir)
    try:
        if volume_node is None:
            raise LesionDetectError("Select an input volume first.")
        work_dir.mkdir(parents=True, exist_ok=True)
        volume = volume_from_node(volume_node)
        input_path = work_dir / "input.nrrd"
        write_nrrd(volume, input_path)
        output_dir = work_dir / "results"
        args = [
            detector,
            str(input_path),
            "-o",
            str(output_dir),
            "--progress",
            "json",
            "--device",
            device,
            "--method",
            method,
            "--no-snapshot",
        ]
        if region_node is not None:
            region_path = work_dir / "region.nrrd"
            mask = region_mask_from_node(region_node, volume_node)
            write_nrrd(Volume(mask, volume.ijk_to_ras, name="region"), region_path)
            args += ["--region", str(region_path)]
        command, env = worker_command(args, python=python)
        worker = WorkerProcess(command, env=env, cwd=str(work_dir))
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    return DetectionRun(worker, work_dir, output_dir, volume_node, detector)


def import_results(scene, output_dir, volume_node) -> Findings:
    """Show a result folder's findings next to `volume_node` (heatmap in slice views and 3D); return them."""
    from .results import load_results
    from .scene import show_findings, show_heatmap_in_3d, show_heatmap_in_slice_views

    findings = load_results(output_dir)
    run_nodes = show_findings(scene, volume_node, findings)
    if run_nodes.heatmap_node is not None:
        show_heatmap_in_slice_views(scene, run_nodes.heatmap_node)
        import slicer

        volume_rendering = getattr(getattr(slicer, "modules", None), "volumerendering", None)  # the app's module
        if volume_rendering is not None:
            show_heatmap_in_3d(scene, run_nodes.heatmap_node, volume_rendering.logic())
    return findings


def export_stl(
    scene, volume_node, detector: str, folder, coordinate_system: str = "LPS", overwrite: bool = False
) -> list[Path]:
    """Write the surfaces of the volume's current run (combined and per lesion) as STL; return the paths."""
    from .scene import surfaces_from_run
    from .stl import write_stl_files

    named_surfaces = surfaces_from_run(scene, volume_node, detector)
    if not named_surfaces:
        raise LesionDetectError("There are no lesion surfaces to export: run Detect on this volume first.")
    return write_stl_files(named_surfaces, folder, coordinate_system=coordinate_system, overwrite=overwrite)


def summary_text(findings: Findings) -> str:
    """A few lines for the panel: the lesion count, each scalar summary value, then the scope note."""
    lines = [f"{len(findings.lesions)} lesion(s) found."]
    for key, value in findings.summary.items():
        if key == "scope_note" or value is None or isinstance(value, (dict, list, tuple)):
            continue
        shown = f"{value:.1f}" if isinstance(value, float) else str(value)
        lines.append(f"{key.replace('_', ' ').capitalize()}: {shown}")
    if findings.summary.get("scope_note"):
        lines.append(findings.summary["scope_note"])
    return "\n".join(lines)
