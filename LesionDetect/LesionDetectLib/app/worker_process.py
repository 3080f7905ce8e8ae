"""Run the `lesiondetect` CLI as a separate process: stream its JSON-lines events, cancel its process tree.

Qt-free: the Slicer panel polls `WorkerProcess.poll()` from a QTimer, tests call it in a loop.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # the folder that holds LesionDetectLib/
EXIT_EVENT = "exit"  # synthetic last event: the process ended and all its output was read
OUTPUT_TIMEOUT_S = 10.0  # after the exit, how long `when_exited` waits for output a stray grandchild holds open


def worker_command(args: list[str], python: str | None = None) -> tuple[list[str], dict[str, str]]:
    """Command list and environment that run `python -m LesionDetectLib.app.cli ARGS` with this package importable."""
    command = [python or sys.executable, "-m", "LesionDetectLib.app.cli", *args]
    env = dict(os.environ)
    python_path = [str(PACKAGE_PARENT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(python_path)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"  # the events carry non-ASCII text (≥, ³, °); Windows pipes default to cp1252
    return command, env


def parse_event(line: str, stream: str = "stdout") -> dict:
    """One output line as an event: a JSON object with an "event" key, else a "log" event holding the text."""
    text = line.rstrip("\r\n")
    try:
        event = json.loads(text)
    except ValueError:
        event = None
    if isinstance(event, dict) and isinstance(event.get("event"), str):
        return event
    return {"event": "log", "message": text, "stream": stream}


class WorkerProcess:
    """A started child process whose stdout/stderr lines arrive as events through `poll()`."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None, cwd: str | None = None):
        self.command = list(command)
        self.cancelled = False
        self._events: queue.Queue[dict] = queue.Queue()
        self._exit_reported = False
        self._process = subprocess.Popen(
            self.command,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            **_new_process_group_options(),
        )
        self._readers = [
            threading.Thread(target=self._read_lines, args=(self._process.stdout, "stdout"), daemon=True),
            threading.Thread(target=self._read_lines, args=(self._process.stderr, "stderr"), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def pid(self) -> int:
        """The child's process id (also its process group id on POSIX)."""
        return self._process.pid

    @property
    def is_running(self) -> bool:
        """True until the child process has exited."""
        return self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        """The exit status (negative signal number on POSIX when killed), None while running."""
        return self._process.poll()

    def poll(self) -> list[dict]:
        """Events that arrived since the last call, without blocking; the last one ever is {"event": "exit"}."""
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                break
        if not self._exit_reported and self._output_finished() and self._process.poll() is not None:
            events.extend(self._drain())
            self._exit_reported = True
            events.append({"event": EXIT_EVENT, "returncode": self._process.returncode, "cancelled": self.cancelled})
        return events

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the process and its output readers; return the exit status, None on timeout."""
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        for reader in self._readers:
            reader.join(timeout)
        return self._process.returncode

    def cancel(self, grace_seconds: float = 5.0) -> None:
        """Ask the whole process tree to stop, and kill what is left after `grace_seconds` (does not block)."""
        self.cancelled = True
        if os.name == "nt":  # taskkill takes a moment: not on the caller's (the GUI's) thread
            threading.Thread(target=_kill_tree_windows, args=(self._process.pid,), daemon=True).start()
            return
        if not _signal_group(self._process.pid, signal.SIGTERM):
            return
        threading.Thread(target=self._kill_group_after, args=(grace_seconds,), daemon=True).start()

    def when_exited(self, callback, output_timeout: float = OUTPUT_TIMEOUT_S) -> threading.Thread:
        """Call `callback()` on a background thread once the process has exited and its output was read
        (at most `output_timeout` seconds after the exit); returns that thread, already started."""

        def wait_then_call() -> None:
            self._process.wait()
            for reader in self._readers:
                reader.join(output_timeout)
            callback()

        thread = threading.Thread(target=wait_then_call, name=f"LesionDetect worker {self.pid} exit", daemon=True)
        thread.start()
        return thread

    def _kill_group_after(self, grace_seconds: float) -> None:
        """SIGKILL the process group if any member is still alive after the grace period."""
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline:
            self._process.poll()  # reap the child so it does not count as a live member
            if not _group_alive(self._process.pid):
                return
            time.sleep(0.05)
        _signal_group(self._process.pid, signal.SIGKILL)

    def _read_lines(self, stream, stream_name: str) -> None:
        """Reader thread: turn each line of one output stream into an event."""
        for line in stream:
            self._events.put(parse_event(line, stream_name))
        stream.close()

    def _output_finished(self) -> bool:
        return not any(reader.is_alive() for reader in self._readers)

    def _drain(self) -> list[dict]:
        events = []
        while not self._events.empty():
            events.append(self._events.get_nowait())
        return events


def _new_process_group_options() -> dict:
    """Popen options that put the child at the head of its own process group, so the tree can be killed."""
    if os.name == "nt":
        flags = subprocess.CREATE_NEW_PROCESS_GROUP | getattr(subprocess, "CREATE_NO_WINDOW", 0)
        return {"creationflags": flags}
    return {"start_new_session": True}


def _signal_group(group_id: int, signal_number: int) -> bool:
    """Send a signal to every process in a POSIX process group; False when the group is gone."""
    try:
        os.killpg(group_id, signal_number)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _group_alive(group_id: int) -> bool:
    """Whether a POSIX process group still has a member (zombies count until reaped)."""
    return _signal_group(group_id, 0)


def _kill_tree_windows(pid: int) -> None:
    """Force-kill a Windows process and all its descendants."""
    subprocess.run(
        ["taskkill", "/F", "/T", "/PID", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        check=False,
    )
