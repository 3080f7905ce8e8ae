"""`lesiondetect`: run a detector on a DICOM series, NRRD or NIfTI file and write its result folder.

Exit codes: 0 done, 1 internal error, 2 bad input or usage, 3 output folder already holds results,
130 cancelled (SIGTERM or Ctrl-C; nothing is written).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import traceback
from pathlib import Path

from . import __version__
from .detectors import DETECTORS
from .device import DEVICE_CHOICES, resolve_device
from .errors import CancelledError, LesionDetectError, OutputExistsError
from .heap import keep_freed_memory
from .output_folder import OutputFolder
from .progress import Progress
from .stl import COORDINATE_SYSTEMS

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_OUTPUT_EXISTS, EXIT_CANCELLED = 0, 1, 2, 3, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lesiondetect", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"lesiondetect {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    calcium = commands.add_parser("calcium", help="coronary artery calcium on non-contrast CT (Agatston)")
    source = calcium.add_mutually_exclusive_group(required=True)
    source.add_argument("input", nargs="?", help="DICOM series folder, .nrrd, .nii or .nii.gz")
    source.add_argument("--sample", action="store_true", help="run on the bundled synthetic cardiac CT")
    calcium.add_argument("-o", "--output", required=True, help="result folder (created; refused if it holds results)")
    calcium.add_argument(
        "--region", help="heart/coronary region: label map on the input's grid (.nrrd/.nii.gz) or a box ROI (.mrk.json)"
    )
    calcium.add_argument(
        "--method",
        choices=DETECTORS["calcium"].methods,
        default=DETECTORS["calcium"].default_method,
        help="deep (ACF + SSD, coronary only; the default when its weights are installed) or classical (threshold)",
    )
    calcium.add_argument("--weights", help="deep model manifest (calcium_deep.json) instead of the shipped one")
    calcium.add_argument("--threshold-hu", type=float, default=130.0, help="calcium threshold (default 130 HU)")
    calcium.add_argument("--mass-calibration", type=float, default=1.0, help="c_HA in mg/cm³ per HU (default 1.0)")
    calcium.add_argument("--series-uid", help="which DICOM series to read when the folder holds several")
    _add_common(calcium)
    sample = commands.add_parser("sample", help="write the bundled synthetic cardiac CT as NRRD")
    sample.add_argument("output", help="NRRD file to write (refused if it exists)")
    sample.add_argument("--slices", type=int, default=64)
    sample.add_argument("--slice-mm", type=float, default=3.0)
    sample.add_argument("--heart-mask", help="also write the sample's heart region mask here")
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    parser.add_argument("--progress", choices=("bar", "json", "none"), default="bar")
    parser.add_argument("--stl-space", choices=COORDINATE_SYSTEMS, default="LPS", help="STL coordinates (default LPS)")
    parser.add_argument("--overwrite", action="store_true", help="replace results already in the output folder")
    parser.add_argument("--no-snapshot", action="store_true", help="skip the offscreen PNG of the 3D view")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    keep_freed_memory()
    if args.command == "sample":
        return _write_sample(args)
    progress = Progress(args.progress)
    previous_handlers = {number: signal.signal(number, _raise_cancelled) for number in (signal.SIGTERM, signal.SIGINT)}
    output = None
    try:
        progress.event("start", detector=args.command, input=args.input or "sample", version=__version__)
        output = OutputFolder(args.output, overwrite=args.overwrite)
        report = _run_calcium(args, output.staging, progress)
        output.commit()
    except CancelledError:
        _discard(output)
        progress.event("cancelled", message="Cancelled: nothing was written.")
        return EXIT_CANCELLED
    except OutputExistsError as error:
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
    )
    if args.progress == "bar":
        _print_summary(report, output.path)
    return EXIT_OK


def _run_calcium(args, staging: Path, progress: Progress) -> dict:
    from .detectors.calcium import CalciumParams, detect_calcium
    from .results import write_results

    started = time.perf_counter()
    volume, region = _read_inputs(args, progress)
    read_s = time.perf_counter() - started
    device, message = resolve_device(args.device, needs_torch=args.method == "deep")
    progress.event("log", message=message)
    params = CalciumParams(threshold_hu=args.threshold_hu, mass_calibration=args.mass_calibration, region=region)
    if args.method == "deep":
        from .calcium_model import DEFAULT_MANIFEST, load_calcium_model
        from .detectors.calcium_deep import detect_calcium_deep

        model = load_calcium_model(Path(args.weights) if args.weights else DEFAULT_MANIFEST)
        findings = detect_calcium_deep(volume, model, params, device, progress)
    else:
        findings = detect_calcium(volume, params, progress)
    findings.device = device
    findings.timings["read_s"] = read_s
    progress("write", 0.92, "Writing results")
    write_started = time.perf_counter()
    report = write_results(findings, staging, args.stl_space)
    if not args.no_snapshot:
        _snapshot(findings, staging, progress)
    findings.timings["write_s"] = time.perf_counter() - write_started
    findings.timings["total_s"] = time.perf_counter() - started
    report["timings"] = findings.timings
    from .report import write_report

    write_report(report, staging / "report.json")
    progress("write", 1.0, "Done")
    return report


def _read_inputs(args, progress: Progress):
    from .volume_io import read_volume

    progress("read", 0.0, "Reading the volume")
    if args.sample:
        from .sample import make_sample

        volume, _, _ = make_sample()
    else:
        volume = read_volume(args.input, series_uid=args.series_uid)
    region = None
    if args.region and args.region.lower().endswith(".json"):
        from .regions import roi_mask_from_markups_file

        region = roi_mask_from_markups_file(args.region, volume) > 0
    elif args.region:
        region_volume = read_volume(args.region)
        if region_volume.array.shape != volume.array.shape:
            raise LesionDetectError(
                f"The region {args.region} has {region_volume.shape_ijk} voxels, the input {volume.shape_ijk}: "
                "give a label map on the input's voxel grid."
            )
        region = region_volume.array > 0
    return volume, region


def _snapshot(findings, folder: Path, progress: Progress) -> None:
    from .snapshot import render_snapshot

    try:
        render_snapshot(findings, folder / "snapshot.png")
    except LesionDetectError as error:
        progress.event("log", message=f"No snapshot: {error}")


def _write_sample(args) -> int:
    from .sample import make_sample
    from .volume_io import write_nrrd

    try:
        volume, _, heart_mask = make_sample(shape_ijk=(512, 512, args.slices), slice_spacing_mm=args.slice_mm)
        write_nrrd(volume, args.output)
        if args.heart_mask:
            from .volume import Volume

            write_nrrd(Volume(heart_mask, volume.ijk_to_ras, "heart region"), args.heart_mask)
    except LesionDetectError as error:
        print(error, file=sys.stderr)
        return EXIT_BAD_INPUT
    print(args.output)
    return EXIT_OK


def _raise_cancelled(signum, frame):
    raise CancelledError("cancelled")


def _discard(output: OutputFolder | None) -> None:
    if output is not None:
        output.discard()


def _print_summary(report: dict, folder: Path) -> None:
    summary = report["summary"]
    print(f"{len(report['lesions'])} lesions; results in {folder}")
    if "agatston_total" in summary:
        print(
            f"Agatston {summary['agatston_total']:.1f} (category {summary['category']}, CAC-DRS {summary['cac_drs']})"
        )
        print(summary["scope_note"])


if __name__ == "__main__":
    sys.exit(main())
