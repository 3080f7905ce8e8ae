"""What the panel's Detect and Export STL buttons do, without Qt: start the worker on a scene volume,
import its result folder into the scene, export the run's surfaces (into a folder checked first, by
default one beside the scene file or in the user's documents), and word its summary.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from LesionDetectLib.app.worker_process import WorkerProcess, worker_command
from LesionDetectLib.detection.detector import InputKind
from LesionDetectLib.detection.findings import Findings
from LesionDetectLib.detection.options import NODE_KINDS, REGION, check_bounds, option_specs, options_from
from LesionDetectLib.errors import LesionDetectError

LOG_TAIL_LINES = 20
ABANDON_GRACE_S = 2.0  # an abandoned run (scene closed, module unloaded): SIGTERM, then SIGKILL after this
EXPORT_FOLDER_NAME = "LesionDetect"


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

    def abandon(self, grace_seconds: float = ABANDON_GRACE_S) -> threading.Thread:
        """Stop the worker without waiting for it: SIGTERM its process tree now, SIGKILL what is left after
        `grace_seconds`, and remove the run's folder once the process has exited, all off the caller's
        thread. Returns the thread that removes the folder (already started)."""
        self.worker.cancel(grace_seconds)
        return self.worker.when_exited(self.discard)


def start_detection(
    volume_node,
    work_dir,
    *,
    detector,
    method: str | None = None,
    device: str = "auto",
    options: dict | None = None,
    python: str | None = None,
) -> DetectionRun:
    """Write the volume (and each region option's mask, each volume option's volume) as NRRD into `work_dir` and
    start the CLI on them.

    `detector` is a registered detector or its id; `options` maps option names to values (a node for a
    region or volume option), missing ones keep the detector's defaults. The run owns `work_dir`: it is removed
    here if starting fails, and by `DetectionRun.discard()`.
    """
    from LesionDetectLib.detection.registry import get_detector
    from LesionDetectLib.io.volume import Volume
    from LesionDetectLib.io.volume_io import write_nrrd
    from LesionDetectLib.scene import region_mask_from_node, volume_from_node

    work_dir = Path(work_dir)
    try:
        if volume_node is None:
            raise LesionDetectError("Select an input volume first.")
        detector = get_detector(detector) if isinstance(detector, str) else detector
        method = method or detector.default_method
        detector.method(method)  # refuses an unknown method by name
        values = dict(options or {})
        check_option_values(detector, values)
        work_dir.mkdir(parents=True, exist_ok=True)
        volume = volume_from_node(volume_node)
        input_path = work_dir / "input.nrrd"
        write_nrrd(volume, input_path)
        output_dir = work_dir / "results"

        kinds = {spec.name: spec.kind for spec in option_specs(detector.Options)}

        def write_region(name: str, node) -> Path:
            path = work_dir / f"{name}.nrrd"
            if kinds[name] == REGION:
                write_nrrd(Volume(region_mask_from_node(node, volume_node), volume.ijk_to_ras, name=name), path)
            else:
                write_nrrd(volume_from_node(node), path)
            return path

        args = [
            detector.id,
            str(input_path),
            "-o",
            str(output_dir),
            "--method",
            method,
            "--device",
            device,
            "--progress",
            "json",
            *(["--no-snapshot"] if InputKind.VOLUME in detector.input_kinds else []),
            *option_arguments(detector.Options, values, write_region),
        ]
        command, env = worker_command(args, python=python)
        worker = WorkerProcess(command, env=env, cwd=str(work_dir))
    except BaseException:
        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    return DetectionRun(worker, work_dir, output_dir, volume_node, detector.id)


def option_arguments(options_type: type, values: dict, write_region) -> list[str]:
    """CLI flags for option values, generated from `option_specs` (missing values: the defaults).

    A region or volume option's value is a node (or None); `write_region(name, node)` writes its mask or
    volume and returns the file the flag names. A bool option is `--flag` or `--no-flag`; None leaves an option out.
    """
    args: list[str] = []
    for spec in option_specs(options_type):
        value = values.get(spec.name, spec.default)
        if value is None:
            continue
        if spec.kind in NODE_KINDS:
            args += [spec.flag, str(write_region(spec.name, value))]
        elif spec.value_type is bool:
            args.append(spec.flag if value else "--no-" + spec.flag[2:])
        else:
            args += [spec.flag, repr(value) if isinstance(value, float) else str(value)]
    return args


def check_option_values(detector, values: dict) -> None:
    """Refuse unknown options and values outside their declared bounds or choices, naming each problem."""
    non_region = {
        spec.name: values[spec.name]
        for spec in option_specs(detector.Options)
        if spec.kind not in NODE_KINDS and spec.name in values
    }
    problems = check_bounds(options_from(detector.Options, non_region))
    unknown = set(values) - {spec.name for spec in option_specs(detector.Options)}
    if unknown:
        problems.append(f"the {detector.title} detector has no option(s) {', '.join(sorted(unknown))}")
    if problems:
        raise LesionDetectError("Check the options: " + "; ".join(problems) + ".")


def import_results(scene, output_dir, input_node) -> Findings:
    """Show a result folder's findings next to their input node (`show_results`); return the findings."""
    from LesionDetectLib.results.result_files import load_results

    findings = load_results(output_dir)
    show_results(scene, findings, input_node)
    return findings


def show_results(scene, findings: Findings, input_node) -> None:
    """Show findings next to their input node (a volume, or the node holding the frames), replacing the
    detector's previous run there: the heatmap over the slice views, and volume-rendered in 3D for a volume;
    a score plot in the layout."""
    from LesionDetectLib.io.volume import Volume
    from LesionDetectLib.scene import (
        show_findings,
        show_heatmap_in_3d,
        show_heatmap_in_slice_views,
        show_image_in_slice_views,
    )

    run_nodes = show_findings(scene, input_node, findings)
    if run_nodes.image_node is not None:
        show_image_in_slice_views(scene, run_nodes.image_node)
    if run_nodes.heatmap_node is not None:
        show_heatmap_in_slice_views(scene, run_nodes.heatmap_node)
        import slicer

        volume_rendering = getattr(getattr(slicer, "modules", None), "volumerendering", None)  # the app's module
        if volume_rendering is not None and isinstance(findings.image, Volume):
            show_heatmap_in_3d(scene, run_nodes.heatmap_node, volume_rendering.logic())
    if run_nodes.plot_chart_node is not None:
        import slicer

        plots = getattr(getattr(slicer, "modules", None), "plots", None)  # the app's module: adds a plot view
        if plots is not None:
            plots.logic().ShowChartInLayout(run_nodes.plot_chart_node)


def export_stl(
    scene, volume_node, detector: str, folder, coordinate_system: str = "LPS", overwrite: bool = False
) -> list[Path]:
    """Write the surfaces of the volume's current run (combined and per lesion) as STL; return the paths.

    Refuses, before writing anything, when there is nothing to export or `folder` cannot be written."""
    from LesionDetectLib.results.stl import LESION_FOLDER, write_stl_files
    from LesionDetectLib.scene import surfaces_from_run

    named_surfaces = surfaces_from_run(scene, volume_node, detector)
    if not named_surfaces:
        raise LesionDetectError("There are no lesion surfaces to export: run Detect on this volume first.")
    check_output_folder(folder, LESION_FOLDER)
    return write_stl_files(named_surfaces, folder, coordinate_system=coordinate_system, overwrite=overwrite)


def has_surfaces(scene, volume_node, detector: str) -> bool:
    """Whether the volume's current run of `detector` has a lesion surface to export (cheap: no mesh copy)."""
    from LesionDetectLib.scene.run_nodes import tagged_nodes

    if volume_node is None or not volume_node.GetID() or not scene.IsNodePresent(volume_node):
        return False
    for node in tagged_nodes(scene, volume_node.GetID(), detector):
        if node.IsA("vtkMRMLModelNode") and node.GetPolyData() is not None:
            if node.GetPolyData().GetNumberOfPoints() > 0:
                return True
    return False


def check_output_folder(folder, *subfolders: str) -> None:
    """Refuse, naming it, a folder that cannot be created or written to, before anything is written.

    The folder may not exist yet: then the nearest existing folder above it must let us create it.
    `subfolders` (relative) are checked too where they already exist."""
    if folder is None or str(folder) == "":
        raise LesionDetectError("Choose an output folder first.")
    folder = Path(folder).expanduser()
    if not folder.is_absolute():
        raise LesionDetectError(f"The output folder {folder} is not a full path; choose a folder.")
    existing = folder  # os.path, unlike Path, says False instead of raising where a folder cannot be searched
    while not os.path.exists(existing) and existing.parent != existing:
        existing = existing.parent
    if not os.path.isdir(existing):
        if existing == folder:
            raise LesionDetectError(f"The output folder {folder} is a file, not a folder; choose another folder.")
        raise LesionDetectError(
            f"The output folder {folder} cannot be created: {existing} is a file; choose another folder."
        )
    if not _writable(existing):
        if existing == folder:
            raise LesionDetectError(f"The output folder {folder} is not writable; choose another folder.")
        raise LesionDetectError(
            f"The output folder {folder} cannot be created: {existing} is not writable; choose another folder."
        )
    for name in subfolders:
        inside = folder / name
        if os.path.exists(inside) and not (os.path.isdir(inside) and _writable(inside)):
            raise LesionDetectError(
                f"The output folder {folder} holds {name}, which is not a writable folder; choose another folder."
            )


def _writable(folder: Path) -> bool:
    """Whether files can be made in `folder`: its permissions, then a probe file (Windows ACLs, read-only mounts)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return False
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        return False
    return True


def default_output_folder(scene) -> Path:
    """Where STL files go unless the user chooses: beside the scene file when the scene has one
    (`<scene folder>/<scene name>-LesionDetect`), else `~/Documents/LesionDetect` (`~/LesionDetect`
    when there is no Documents folder)."""
    url = scene.GetURL() if scene is not None else ""
    if url:
        scene_file = Path(url)
        if not scene_file.is_absolute() and scene.GetRootDirectory():
            scene_file = Path(scene.GetRootDirectory()) / scene_file
        if scene_file.is_absolute():
            return scene_file.parent / f"{scene_file.stem}-{EXPORT_FOLDER_NAME}"
    try:
        home = Path.home()
    except RuntimeError:  # no home folder known
        return Path(tempfile.gettempdir()) / EXPORT_FOLDER_NAME
    documents = home / "Documents"
    return (documents if documents.is_dir() else home) / EXPORT_FOLDER_NAME


def summary_text(findings: Findings) -> str:
    """A few lines for the panel: the lesion count, the detector's summary lines, then any warnings."""
    from LesionDetectLib.app.run import closing_lines

    return "\n".join([f"{len(findings.lesions)} lesion(s) found.", *closing_lines(findings)])


class DetectionLogic:
    """What the panel asks of the scene: start a run, import its results, export its surfaces.

    Qt-free and usable from Slicer's Python console: `LesionDetectLogic` in LesionDetect.py is this
    with Slicer's scene, temporary folders and `PythonSlicer`; tests give a slicer-core scene.
    """

    def __init__(self, scene, work_dirs, python: str | None = None):
        self.scene = scene
        self.work_dirs = work_dirs  # () -> a new empty folder for one run
        self.python = python

    def start_detection(self, volume_node, detector, method: str, device: str, options: dict) -> DetectionRun:
        return start_detection(
            volume_node,
            self.work_dirs(),
            detector=detector,
            method=method,
            device=device,
            options=options,
            python=self.python,
        )

    def import_results(self, output_dir, volume_node) -> Findings:
        return import_results(self.scene, output_dir, volume_node)

    def show_results(self, findings: Findings, volume_node) -> None:
        show_results(self.scene, findings, volume_node)

    def export_stl(self, volume_node, detector_id: str, folder, coordinate_system: str = "LPS", overwrite=False):
        return export_stl(self.scene, volume_node, detector_id, folder, coordinate_system, overwrite)

    def has_surfaces(self, volume_node, detector_id: str) -> bool:
        return has_surfaces(self.scene, volume_node, detector_id)

    def default_output_folder(self) -> Path:
        return default_output_folder(self.scene)

    @staticmethod
    def summary_text(findings: Findings) -> str:
        return summary_text(findings)
