"""`lesiondetect`: run any registered detector on a scan, image or cine and write its result folder.

`lesiondetect list` prints the detectors, their methods and installed weights;
`lesiondetect <detector> INPUT -o OUT` runs one (flags from its options; `--sample` runs it on its
bundled sample). Exit codes: 0 done, 1 internal error, 2 bad input or usage, 3 output folder
already holds results, 130 cancelled (SIGTERM or Ctrl-C; nothing is written).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
from pathlib import Path

from LesionDetectLib import __version__
from LesionDetectLib.detection.detector import Detector, InputKind
from LesionDetectLib.detection.device import DEVICE_CHOICES
from LesionDetectLib.detection.options import REGION, add_option_flags, options_from_args
from LesionDetectLib.detection.progress import Progress
from LesionDetectLib.detection.registry import detectors, get_detector
from LesionDetectLib.errors import CancelledError, LesionDetectError, OutputExistsError
from LesionDetectLib.results.output_folder import OutputFolder

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_OUTPUT_EXISTS, EXIT_CANCELLED = 0, 1, 2, 3, 130
STL_SPACES = ("LPS", "RAS")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lesiondetect", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"lesiondetect {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the detectors, their methods and installed weights")
    for detector in detectors().values():
        _add_detector_command(commands, detector)
    return parser


def _add_detector_command(commands, detector: Detector) -> None:
    kinds = " or ".join(kind.value for kind in detector.input_kinds)
    command = commands.add_parser(detector.id, help=f"{detector.title} ({kinds})")
    source = command.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "input", nargs="?", help="DICOM folder or file, NRRD/NIfTI/MHA, PNG/JPEG/TIFF, or a frame folder"
    )
    source.add_argument("--sample", action="store_true", help="run on the detector's bundled sample")
    source.add_argument("--write-sample", metavar="FILE", help="write the bundled sample as NRRD and stop")
    command.add_argument("-o", "--output", help="result folder (created; refused if it holds results)")
    methods = detector.method_names
    command.add_argument(
        "--method",
        choices=methods,
        default=detector.default_method,
        help="; ".join(f"{m.name}: {m.description}" for m in detector.methods)
        + f" (default {detector.default_method})",
    )
    if any(method.weights is not None for method in detector.methods):
        command.add_argument("--weights", help="a model manifest (.json) instead of the shipped one")
    command.add_argument("--series-uid", help="which DICOM series to read when the folder holds several")
    command.add_argument("--echo", help="multi-echo series: the echo number to read, or 'combine'")
    add_option_flags(command, detector.Options)
    command.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    command.add_argument("--progress", choices=("bar", "json", "none"), default="bar")
    if InputKind.VOLUME in detector.input_kinds:
        command.add_argument("--stl-space", choices=STL_SPACES, default="LPS", help="STL coordinates (default LPS)")
        command.add_argument("--no-snapshot", action="store_true", help="skip the offscreen PNG of the 3D view")
    command.add_argument("--overwrite", action="store_true", help="replace results already in the output folder")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "list":
        print(list_text())
        return EXIT_OK
    detector = get_detector(args.command)
    if args.write_sample:
        return _write_sample(detector, args.write_sample)
    if not args.output:
        parser.error("-o/--output is required")
    progress = Progress(args.progress)
    previous_handlers = {number: signal.signal(number, _raise_cancelled) for number in (signal.SIGTERM, signal.SIGINT)}
    output = None
    try:
        progress.event("start", detector=detector.id, input=args.input or "sample", version=__version__)
        output = OutputFolder(args.output, overwrite=args.overwrite)
        report, findings = _run(detector, args, output.staging, progress)
        output.commit()
    except CancelledError:
        _discard(output)
        progress.event("cancelled", message="Cancelled: nothing was written.")
        return EXIT_CANCELLED
    except OutputExistsError as error:
        _discard(output)
        progress.event("error", message=str(error), exit_code=EXIT_OUTPUT_EXISTS)
        return EXIT_OUTPUT_EXISTS
    except LesionDetectError as error:
        _discard(output)
        progress.event("error", message=str(error), exit_code=EXIT_BAD_INPUT)
        return EXIT_BAD_INPUT
    except Exception as error:  # noqa: BLE001 - report any crash as one clear event, with the trace on stderr
        _discard(output)
        traceback.print_exc()
        progress.event("error", message=f"Internal error: {error}", exit_code=EXIT_INTERNAL)
        return EXIT_INTERNAL
    finally:
        progress.close()
        for number, handler in previous_handlers.items():
            signal.signal(number, handler)
    progress.event(
        "done",
        output=str(output.path),
        report=str(output.path / "report.json"),
        lesions=len(report["lesions"]),
        summary={key: value for key, value in report["summary"].items() if key != "excluded"},
        warnings=report["warnings"],
    )
    if args.progress == "bar":
        _print_summary(findings, output.path)
    return EXIT_OK


def _run(detector: Detector, args, staging: Path, progress: Progress):
    from LesionDetectLib.app.run import run_and_write

    started = time.perf_counter()
    progress("read", 0.0, "Reading the input")
    image = _read_input(detector, args)
    options = options_from_args(detector.Options, args, lambda kind, path: _option_file(kind, path, image))
    return run_and_write(
        detector,
        image,
        options,
        args.method,
        staging,
        progress,
        device=args.device,
        weights=Path(args.weights) if getattr(args, "weights", None) else None,
        stl_space=getattr(args, "stl_space", "LPS"),
        snapshot=not getattr(args, "no_snapshot", True),
        read_s=time.perf_counter() - started,
    )


def _read_input(detector: Detector, args):
    if args.sample:
        sample = detector.sample()
        if sample is None:
            raise LesionDetectError(f"The {detector.title} detector has no bundled sample.")
        return sample
    from LesionDetectLib.io.read_input import read_input

    return read_input(args.input, series_uid=args.series_uid, echo=args.echo)


def _option_file(kind: str, path: str, image):
    """A region option's mask, or a volume option's array, read from its file."""
    return _region_mask(path, image) if kind == REGION else _companion_volume(path, image)


def _companion_volume(path: str, image):
    """A second volume on the input's grid (e.g. phase, parcellation) as its array (k, j, i)."""
    import numpy as np

    from LesionDetectLib.io.volume import Volume
    from LesionDetectLib.io.volume_io import read_volume

    if not isinstance(image, Volume):
        raise LesionDetectError("A second volume can only be given for a 3D volume.")
    companion = read_volume(path)
    if companion.array.shape != image.array.shape or not np.allclose(
        companion.ijk_to_ras, image.ijk_to_ras, atol=1e-3 * float(image.spacing.min())
    ):
        raise LesionDetectError(
            f"The volume {path} ({companion.shape_ijk} voxels) is not on the input's voxel grid "
            f"({image.shape_ijk} voxels, same position and spacing): resample it onto the input first."
        )
    return companion.array


def _region_mask(path: str, image):
    """A region file as a boolean mask on the input's grid: a label map on that grid, or a Slicer box ROI."""
    from LesionDetectLib.io.volume import Volume

    if not isinstance(image, Volume):
        raise LesionDetectError("A region can only be given for a 3D volume.")
    if path.lower().endswith(".json"):
        from LesionDetectLib.io.regions import roi_mask_from_markups_file

        return roi_mask_from_markups_file(path, image) > 0
    from LesionDetectLib.io.volume_io import read_volume

    region = read_volume(path)
    if region.array.shape != image.array.shape:
        raise LesionDetectError(
            f"The region {path} has {region.shape_ijk} voxels, the input {image.shape_ijk}: "
            "give a label map on the input's voxel grid."
        )
    return region.array > 0


def list_text() -> str:
    """Each detector with its input, methods (default first, with what they need) and weights."""
    lines = []
    for detector in detectors().values():
        kinds = ", ".join(kind.value for kind in detector.input_kinds)
        modalities = ", ".join(detector.modalities) or "any modality"
        lines.append(f"{detector.id}: {detector.title} ({kinds}; {modalities})")
        for method in detector.methods:
            needs = ["torch"] if method.needs_torch else []
            needs += list(method.packages)
            default = " [default]" if method.name == detector.default_method else ""
            lines.append(
                f"  {method.name}{default}: {method.description}" + (f" (needs {', '.join(needs)})" if needs else "")
            )
            if method.weights is not None:
                state = "installed" if method.available else "NOT installed"
                lines.append(f"    weights {state}: {method.weights}")
    return "\n".join(lines)


def _write_sample(detector: Detector, path: str) -> int:
    from LesionDetectLib.io.volume import Volume
    from LesionDetectLib.io.volume_io import write_nrrd

    try:
        sample = detector.sample()
        if not isinstance(sample, Volume):
            raise LesionDetectError(f"The {detector.title} detector has no bundled sample volume to write.")
        write_nrrd(sample, path)
    except LesionDetectError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_INPUT
    print(path)
    return EXIT_OK


def _raise_cancelled(signum, frame):
    raise CancelledError("cancelled")


def _discard(output: OutputFolder | None) -> None:
    if output is not None:
        output.discard()


def _print_summary(findings, folder: Path) -> None:
    from LesionDetectLib.app.run import closing_lines

    print(f"{len(findings.lesions)} lesions; results in {folder}")
    for line in closing_lines(findings):
        print(line)


def entry() -> None:
    """The `lesiondetect` program: tune this process's heap (never Slicer's, which calls `main`), then run."""
    from LesionDetectLib.app.heap import keep_freed_memory

    keep_freed_memory()
    sys.exit(main())


if __name__ == "__main__":
    entry()
