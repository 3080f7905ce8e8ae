"""A small detector that exercises every kind of panel option, for the panel tests (and its own CLI check).

The panel tests register it in their process with `register()` and, for the worker process, name
this module in LESIONDETECT_PLUGINS with Testing/ on PYTHONPATH, so the real CLI runs it too.
It marks bright voxels as lesions after a few progress steps (`pause_s` apart, for Cancel tests;
`uninterruptible` makes those pauses hold off SIGTERM, as a long native call such as a network's
forward pass does), optionally with a box surface per lesion (for the STL export tests).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from LesionDetectLib.detection.detector import Detector, InputKind, Method, no_progress
from LesionDetectLib.detection.findings import Findings, Lesion, Surface
from LesionDetectLib.detection.options import REGION, option
from LesionDetectLib.detection.registry import PLUGINS_VARIABLE
from LesionDetectLib.errors import LesionDetectError

TESTING_DIR = Path(__file__).resolve().parent
TOY_ID = "paneltoy"
TOY_STEPS = 4
ABSENT_IMPORT = "lesiondetect_absent_module"
ABSENT_REQUIREMENT = "lesiondetect-absent==1.0"
FAILING_MIN_VOXELS = 500  # a larger min_voxels makes the run fail inside the worker


@dataclass
class ToyOptions:
    region: np.ndarray | None = field(default=None, metadata=option("only look inside this region", kind=REGION))
    threshold_hu: float = field(
        default=300.0,
        metadata=option("voxels at least this bright are lesions", minimum=0.0, maximum=3000.0, unit="HU"),
    )
    min_voxels: int = field(default=1, metadata=option("smallest lesion in voxels", minimum=1, maximum=1000))
    merge: bool = field(default=True, metadata=option("report all bright voxels as one lesion"))
    label: str = field(default="bright", metadata=option("the lesions' label", choices=("bright", "spot")))
    pause_s: float = field(default=0.0, metadata=option("seconds between progress steps", minimum=0.0))
    uninterruptible: bool = field(default=False, metadata=option("the pauses hold off SIGTERM until they end"))
    surface: bool = field(default=False, metadata=option("give each lesion a box surface"))
    internal: int = 7  # no option metadata: not shown, not a flag


class ToyDetector(Detector):
    id = TOY_ID
    title = "Panel toy"
    input_kinds = (InputKind.VOLUME,)
    methods = (
        Method("shipped", "needs weights that are not installed", weights=TESTING_DIR / "absent_weights.json"),
        Method("net", "pretends to run a network", needs_torch=True, packages={ABSENT_IMPORT: ABSENT_REQUIREMENT}),
        Method("quick", "thresholds the volume"),
    )
    Options = ToyOptions

    def run(self, image, options, method, device="cpu", progress=None, cancel=None, weights=None):
        progress = progress or no_progress
        if options.min_voxels > FAILING_MIN_VOXELS:
            raise LesionDetectError(f"The toy refuses lesions of more than {FAILING_MIN_VOXELS} voxels.")
        for step in range(TOY_STEPS):
            progress("toy", step / TOY_STEPS, f"Toy step {step + 1} of {TOY_STEPS}")
            _pause(options.pause_s, options.uninterruptible)
        mask = image.array >= options.threshold_hu
        if options.region is not None:
            mask &= np.asarray(options.region, dtype=bool)
        lesions = []
        if mask.sum() >= options.min_voxels:
            k, j, i = np.nonzero(mask)
            box_ijk = [[i.min(), j.min(), k.min()], [i.max(), j.max(), k.max()]]
            surface = box_surface(image, box_ijk) if options.surface else None
            lesions.append(Lesion.from_box(image, 1, options.label, box_ijk, score=1.0, surface=surface))
        summary = {"bright_voxels": int(mask.sum()), "scope_note": "Toy detector: bright voxels only."}
        return Findings(self.id, method, image, lesions, summary)

    def summary_lines(self, findings):
        return [f"{findings.summary['bright_voxels']} bright voxel(s)", findings.summary["scope_note"]]


def _pause(seconds: float, uninterruptible: bool) -> None:
    """Sleep; an uninterruptible pause defers SIGTERM (delivered when it ends), like a long native call."""
    if not uninterruptible or not hasattr(signal, "pthread_sigmask"):
        time.sleep(seconds)
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        time.sleep(seconds)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


# The 12 outward triangles of the unit cube whose corner (i, j, k) ∈ {0, 1}³ is point i + 2j + 4k.
_CUBE_TRIANGLES = np.array(
    [[0, 2, 3], [0, 3, 1], [4, 5, 7], [4, 7, 6], [0, 1, 5], [0, 5, 4]]
    + [[2, 6, 7], [2, 7, 3], [0, 4, 6], [0, 6, 2], [1, 3, 7], [1, 7, 5]]
)


def box_surface(image, box_ijk) -> Surface:
    """The closed surface around an inclusive voxel box, in RAS."""
    low, high = np.asarray(box_ijk, dtype=float) + [[-0.5], [0.5]]
    bits = (np.arange(8)[:, None] >> np.arange(3)) & 1  # corner n's (i, j, k) bits
    corners = np.where(bits == 1, high, low)
    triangles = _CUBE_TRIANGLES if np.linalg.det(image.ijk_to_ras[:3, :3]) > 0 else _CUBE_TRIANGLES[:, ::-1]
    return Surface(image.ijk_to_ras_points(corners), triangles.copy())


def toy_worker_environment(monkeypatch) -> None:
    """Let a worker process started from this test find the toy detector."""
    monkeypatch.setenv(PLUGINS_VARIABLE, "test_panel_toy_detector")
    python_path = [str(TESTING_DIR), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(python_path))


def toy_volume(shape_kji=(6, 16, 16)):
    """A small int16 volume at -1000 HU with one bright 2×2×2 block."""
    from LesionDetectLib.io.volume import Volume

    array = np.full(shape_kji, -1000, dtype=np.int16)
    array[2:4, 5:7, 8:10] = 600
    ijk_to_ras = np.diag([0.8, 0.8, 2.0, 1.0])
    return Volume(array, ijk_to_ras, name="toy", modality="CT")


def test_the_real_cli_runs_the_toy_detector_with_every_option_flag(tmp_path, monkeypatch):
    from LesionDetectLib.io.volume_io import write_nrrd

    toy_worker_environment(monkeypatch)
    volume = toy_volume()
    write_nrrd(volume, tmp_path / "toy.nrrd")
    command = [sys.executable, "-m", "LesionDetectLib.app.cli", TOY_ID, str(tmp_path / "toy.nrrd")]
    command += ["-o", str(tmp_path / "out"), "--method", "quick", "--progress", "none", "--no-snapshot"]
    command += ["--threshold-hu", "500", "--min-voxels", "2", "--no-merge", "--label", "spot", "--pause-s", "0"]
    command += ["--uninterruptible", "--surface"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    import json

    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["detector"] == TOY_ID and len(report["lesions"]) == 1
    assert report["params"]["threshold_hu"] == 500.0 and report["params"]["label"] == "spot"
    assert report["params"]["merge"] is False and "internal" not in report["params"]
    assert report["params"]["surface"] is True and report["lesions"][0]["stl"], "the box surface is written"
    assert (tmp_path / "out" / report["lesions"][0]["stl"]).is_file()
