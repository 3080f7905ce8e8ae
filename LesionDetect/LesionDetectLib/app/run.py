"""The one run path every detector takes: check → device → run → write, with progress and cancel."""

from __future__ import annotations

import time
from pathlib import Path

from LesionDetectLib.detection.detector import Detector, InputKind, never_cancelled
from LesionDetectLib.detection.device import resolve_device
from LesionDetectLib.detection.findings import Findings, Image
from LesionDetectLib.detection.options import check_bounds, params_of
from LesionDetectLib.detection.progress import Progress
from LesionDetectLib.errors import CancelledError, LesionDetectError


def run_and_write(
    detector: Detector,
    image: Image,
    options,
    method: str,
    staging: Path,
    progress: Progress,
    *,
    device: str = "auto",
    weights: Path | None = None,
    stl_space: str = "LPS",
    snapshot: bool = True,
    cancel=never_cancelled,
    read_s: float = 0.0,
) -> tuple[dict, Findings]:
    """Run `detector` on `image` and write its result files into `staging`; return the report and findings."""
    from LesionDetectLib.results.report import write_report
    from LesionDetectLib.results.result_files import write_results

    started = time.perf_counter()
    findings = run_detector(detector, image, options, method, progress, device=device, weights=weights, cancel=cancel)
    findings.timings["read_s"] = read_s
    progress("write", 0.92, "Writing results")
    write_started = time.perf_counter()
    report = write_results(findings, staging, stl_space, detector.columns)
    if snapshot and InputKind.of(image) is InputKind.VOLUME and _snapshot(findings, staging, progress):
        report["outputs"]["snapshot"] = "snapshot.png"
    findings.timings["write_s"] = time.perf_counter() - write_started
    findings.timings["total_s"] = time.perf_counter() - started + read_s
    report["timings"] = findings.timings
    write_report(report, staging / "report.json")
    progress("write", 1.0, "Done")
    return report, findings


def run_detector(
    detector: Detector,
    image: Image,
    options,
    method: str,
    progress: Progress,
    *,
    device: str = "auto",
    weights: Path | None = None,
    cancel=never_cancelled,
) -> Findings:
    """Check the input and options, pick the device, run; the findings carry the params, reading notes and device."""
    chosen = detector.method(method)
    if weights is not None and chosen.weights is None:
        raise LesionDetectError(f"The {method} method of the {detector.title} detector takes no weights file.")
    if not chosen.available and weights is None:
        raise LesionDetectError(
            f"The {method} method's weights are not installed ({chosen.weights}); "
            "give --weights or choose another method."
        )
    problems = check_bounds(options)
    if problems:
        raise LesionDetectError("; ".join(problems) + ".")
    progress("check", 0.0, "Checking the input")
    detector.check(image, options)
    resolved_device, message = resolve_device(device, needs_torch=chosen.needs_torch)
    progress.event("log", message=message)
    findings = detector.run(image, options, method, resolved_device, _cancellable(progress, cancel), cancel, weights)
    findings.device = resolved_device
    findings.params = params_of(options)
    findings.warnings = list(getattr(image, "notes", [])) + findings.warnings
    return findings


def closing_lines(findings: Findings) -> list[str]:
    """What a finished run says last (CLI and panel): the detector's summary lines, then any warnings."""
    from LesionDetectLib.detection.registry import detectors

    detector = detectors().get(findings.detector)
    lines = detector.summary_lines(findings) if detector is not None else []
    return lines + [f"Warning: {warning}" for warning in findings.warnings]


def _cancellable(progress: Progress, cancel):
    """A progress callback that stops the run when `cancel()` turns true."""

    def report(stage: str, fraction: float, message: str = "") -> None:
        if cancel():
            raise CancelledError("cancelled")
        progress(stage, fraction, message)

    return report


def _snapshot(findings: Findings, folder: Path, progress: Progress) -> bool:
    from LesionDetectLib.results.snapshot import render_snapshot

    try:
        render_snapshot(findings, folder / "snapshot.png")
    except CancelledError:
        raise
    except LesionDetectError as error:
        progress.event("log", message=f"No snapshot: {error}")
        return False
    return True
