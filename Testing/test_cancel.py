"""A run cancelled by SIGTERM while it reads, while the network runs and while it writes, and an `--overwrite`
run cancelled while it writes: exit 130, a `cancelled` event, and the file system as it was before the
run (no output folder, no `.NAME.partial-*` or `.NAME.previous-*` folder, earlier results byte-identical).

Each test sends SIGTERM right after the JSON `progress` event that opens the moment and checks that the
run was still in that stage when it stopped: no event of a later stage came before `cancelled`.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from file_tree import tree_state

REPO = Path(__file__).resolve().parents[1]
READ_SLICES = 400  # a 512×512×400 gzip NRRD: about 1.5 s to read here
STAGES_OF_A_MOMENT = {"read": {"read"}, "network": {"network"}, "write": {"write"}}


def cancel_at(stage: str, *args, when=None) -> tuple[list[dict], list[dict], int]:
    """Run `lesiondetect calcium ARGS --progress json`, SIGTERM it right after the first progress event of
    `stage` (and then as soon as `when(pid)` is true): (the events up to that one, the events after it,
    the exit code)."""
    with tempfile.TemporaryFile(mode="w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "LesionDetectLib.app.cli", "calcium", *map(str, args), "--progress", "json"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO / "LesionDetect")},
        )
        before, after = [], []
        try:
            while True:
                line = process.stdout.readline()
                if not line:
                    break
                event = json.loads(line)
                before.append(event)
                if event["event"] == "progress" and event["stage"] == stage:
                    if when is not None:
                        wait_for(lambda: when(process.pid) or process.poll() is not None)
                    process.send_signal(signal.SIGTERM)
                    break
            after = [json.loads(line) for line in process.stdout.read().splitlines() if line.startswith("{")]
            code = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        stderr.seek(0)
        assert before and before[-1].get("stage") == stage, f"never reached {stage}: {before}\n{stderr.read()}"
    return before, after, code


def wait_for(condition, timeout_s=20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def has_open(path: Path):
    """A condition on a process id: it has `path` open (read from /proc)."""

    def condition(pid: int) -> bool:
        try:
            names = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            return False
        for name in names:
            try:
                if os.readlink(f"/proc/{pid}/fd/{name}") == str(path):
                    return True
            except OSError:
                continue
        return False

    return condition


def assert_cancelled_in(stage: str, after: list[dict], code: int) -> None:
    assert code == 130, after
    assert after and after[-1]["event"] == "cancelled", after
    later = [event for event in after[:-1] if event["event"] == "progress" and event["stage"] != stage]
    assert not later, f"the run had left the {stage} stage when it stopped: {later}"
    assert not any(event["event"] in ("done", "error") for event in after), after


@pytest.fixture(scope="module")
def large_gzip_nrrd(tmp_path_factory) -> Path:
    """A CT-like 512×512×READ_SLICES gzip NRRD, large enough that reading it takes over a second."""
    rng = np.random.default_rng(7)
    array = rng.integers(-1000, -990, size=(READ_SLICES, 512, 512), dtype=np.int16)
    array[:, 128:384, 128:384] += 1040
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.4, 0.4, 1.0))
    image.SetMetaData("modality", "CT")
    path = tmp_path_factory.mktemp("large") / "scan.nrrd"
    sitk.WriteImage(image, str(path), useCompression=True, compressionLevel=1)
    return path


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to see the input being read")
def test_sigterm_while_reading_leaves_nothing(tmp_path, large_gzip_nrrd):
    """SIGTERM while the scan file is open: after the `read` event, as soon as the process has the file open."""
    started = time.perf_counter()
    args = (large_gzip_nrrd, "--method", "classical", "-o", tmp_path / "out")
    _, after, code = cancel_at("read", *args, when=has_open(large_gzip_nrrd.resolve()))
    assert_cancelled_in("read", after, code)
    assert tree_state(tmp_path) == {}
    assert time.perf_counter() - started < 20


def test_sigterm_while_the_network_runs_leaves_nothing(tmp_path):
    _, after, code = cancel_at("network", "--sample", "-o", tmp_path / "out")
    assert_cancelled_in("network", after, code)
    assert tree_state(tmp_path) == {}


def test_sigterm_while_writing_leaves_nothing(tmp_path):
    _, after, code = cancel_at("write", "--sample", "--method", "classical", "-o", tmp_path / "out")
    assert_cancelled_in("write", after, code)
    assert tree_state(tmp_path) == {}


def test_cancelled_overwrite_keeps_the_earlier_results_byte_identical(tmp_path):
    out = tmp_path / "results" / "out"
    earlier = subprocess.run(
        [sys.executable, "-m", "LesionDetectLib.app.cli", "calcium", "--sample", "--method", "classical"]
        + ["--threshold-hu", "300", "--no-snapshot", "-o", str(out), "--progress", "none"],
        env={**os.environ, "PYTHONPATH": str(REPO / "LesionDetect")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert earlier.returncode == 0, earlier.stderr
    (out / "notes.txt").write_text("the user's own file")
    state = tree_state(tmp_path)
    assert "results/out/report.json" in state
    _, after, code = cancel_at("write", "--sample", "--method", "classical", "--overwrite", "-o", out)
    assert_cancelled_in("write", after, code)
    assert tree_state(tmp_path) == state


GL_LIBRARIES = ("libEGL", "libGLdispatch", "libOSMesa", "libGL.so")  # loaded when the first render window opens


@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="needs /proc to see the snapshot being drawn")
def test_sigterm_while_the_snapshot_renders_leaves_nothing(tmp_path):
    """The last part of writing: `report.json` is staged and the snapshot's render window has opened."""

    def drawing_the_snapshot(pid: int) -> bool:
        if not any(tmp_path.glob(".out.partial-*/report.json")):
            return False
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            return False
        return any(library in maps for library in GL_LIBRARIES)

    args = ("--sample", "--method", "classical", "-o", tmp_path / "out")
    _, after, code = cancel_at("write", *args, when=drawing_the_snapshot)
    assert_cancelled_in("write", after, code)
    assert tree_state(tmp_path) == {}


def test_a_cancel_arriving_while_results_move_in_is_too_late_and_the_run_is_done(tmp_path, monkeypatch):
    """SIGTERM is held off while the staged files move in; delivered after, it must not undo a finished run."""
    import os

    from LesionDetectLib.errors import CancelledError
    from LesionDetectLib.results.output_folder import OutputFolder

    def raise_cancelled(signum, frame):
        raise CancelledError("cancelled")

    previous = signal.signal(signal.SIGTERM, raise_cancelled)
    try:
        output = OutputFolder(tmp_path / "out")
        (output.staging / "report.json").write_text("{}")
        move_in = output._move_in

        def move_in_while_signalled():
            os.kill(os.getpid(), signal.SIGTERM)  # pending: termination is blocked during the move
            move_in()

        monkeypatch.setattr(output, "_move_in", move_in_while_signalled)
        output.commit()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (tmp_path / "out" / "report.json").read_text() == "{}" and output.committed
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]
