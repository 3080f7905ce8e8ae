"""Evaluate a calcium method on real scans with reference Agatston scores (Stanford COCA non-gated).

    python training/evaluate_calcium_real.py --nongated DATA/deidentified_nongated --method classical --out runs/real
    python training/evaluate_calcium.py --nongated DATA/deidentified_nongated --method deep --out runs/real_deep
    python training/evaluate_calcium_real.py ... --method classical --heart-region   # inside the found heart region

Each patient's scan runs through the platform (`run_detector`, as the CLI runs it; partial-volume surfaces
off, which changes no score). Per patient: reference and predicted total, category (0, 1-10, 11-100,
101-400, > 400) and per-artery scores (LM, LAD, LCX, RCA). Over the set: category agreement, Spearman
rank correlation of the totals, the share of artery scores within 50 % or 25 points of the reference, and
how many zero-calcium patients score below 10. A scan the method refuses (a `LesionDetectError`, e.g. a
pixel size outside the deep model's trained range) is reported as refused with its message, never as 0:
it counts as a miss in the category, artery and zero-calcium figures and is left out of the correlation.
The classical method names no arteries, so its artery figure is not available rather than zero.
Writes ``metrics.json`` (summary + patients) and ``totals.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "LesionDetect"))

from calcium_datasets import (  # noqa: E402
    NONGATED_SCORES,
    ReferenceScores,
    nongated_folder,
    nongated_patient_ids,
    read_nongated_case,
    read_nongated_scores,
)

from LesionDetectLib.detectors.calcium.agatston import agatston_category  # noqa: E402
from LesionDetectLib.detectors.calcium.labels import ARTERIES  # noqa: E402
from LesionDetectLib.errors import LesionDetectError  # noqa: E402

ARTERY_TOLERANCE_FRACTION = 0.5  # an artery score agrees within 50 % of the reference ...
ARTERY_TOLERANCE_POINTS = 25.0  # ... or within 25 Agatston points, whichever is wider
ZERO_CALCIUM_LIMIT = 10.0  # a zero-calcium patient should score below this
ARTERY_METHODS = ("deep",)  # methods whose lesions carry an artery: no per-artery entry there means 0
MIN_SPEARMAN_PATIENTS = 3


def artery_agrees(reference: float, predicted: float) -> bool:
    """Within 50 % of the reference or 25 points of it, whichever allows more."""
    return abs(predicted - reference) <= max(ARTERY_TOLERANCE_FRACTION * reference, ARTERY_TOLERANCE_POINTS)


def scored_record(
    patient: str, reference: ReferenceScores, total: float, per_artery: dict[str, float] | None, **extra
) -> dict:
    """One scored patient: reference vs predicted total, category and (when the method names arteries) arteries."""
    predicted_category = agatston_category(total)
    return {
        "patient": patient,
        "status": "scored",
        "message": None,
        "reference": _reference(reference),
        "predicted": {
            "total": float(total),
            "category": predicted_category,
            "per_artery": None if per_artery is None else {a: float(per_artery.get(a, 0.0)) for a in ARTERIES},
        },
        "category_agrees": predicted_category == agatston_category(reference.total),
        "artery_agrees": None
        if per_artery is None
        else {a: artery_agrees(reference.per_artery[a], float(per_artery.get(a, 0.0))) for a in ARTERIES},
        **extra,
    }


def refused_record(patient: str, reference: ReferenceScores, message: str, **extra) -> dict:
    """One patient the method refused (or whose scan could not be read): no prediction, the reason kept."""
    return {
        "patient": patient,
        "status": "refused",
        "message": message,
        "reference": _reference(reference),
        "predicted": None,
        "category_agrees": False,
        "artery_agrees": None,
        **extra,
    }


def _reference(reference: ReferenceScores) -> dict:
    return {
        "row": reference.row,
        "total": float(reference.total),
        "category": agatston_category(reference.total),
        "per_artery": {a: float(reference.per_artery[a]) for a in ARTERIES},
    }


def summarise_real(records: list[dict]) -> dict:
    """The set's figures from per-patient records (`scored_record` / `refused_record`)."""
    from scipy.stats import spearmanr

    scored = [r for r in records if r["status"] == "scored"]
    refused = [r["patient"] for r in records if r["status"] != "scored"]
    agree = sum(bool(r["category_agrees"]) for r in records)
    summary = {
        "patients": len(records),
        "scored": len(scored),
        "refused": refused,
        "category_agreement": {"agree": agree, "of": len(records), "fraction": agree / max(len(records), 1)},
    }
    reference = np.array([r["reference"]["total"] for r in scored])
    predicted = np.array([r["predicted"]["total"] for r in scored])
    rho = p_value = None
    if len(scored) >= MIN_SPEARMAN_PATIENTS and len(set(reference)) > 1 and len(set(predicted)) > 1:
        result = spearmanr(reference, predicted)
        rho, p_value = float(result.statistic), float(result.pvalue)
    summary["spearman_totals"] = {"rho": rho, "p_value": p_value, "patients": len(scored)}
    summary["total_abs_difference_mean"] = float(np.mean(np.abs(predicted - reference))) if scored else None
    with_arteries = [r for r in scored if r["artery_agrees"] is not None]
    if with_arteries or not scored:
        # refused patients count as misses: their four artery scores were not measured
        within = sum(sum(r["artery_agrees"].values()) for r in with_arteries)
        of = len(ARTERIES) * (len(with_arteries) + len(refused))
        summary["artery_within_50pct_or_25"] = {"within": within, "of": of, "fraction": within / of if of else None}
    else:
        summary["artery_within_50pct_or_25"] = {
            "within": None,
            "of": None,
            "fraction": None,
            "note": "this method names no arteries",
        }
    zero = [r for r in records if r["reference"]["total"] == 0]
    below = [r for r in zero if r["status"] == "scored" and r["predicted"]["total"] < ZERO_CALCIUM_LIMIT]
    summary["zero_calcium_below_10"] = {
        "below": len(below),
        "of": len(zero),
        "refused": sum(r["status"] != "scored" for r in zero),
    }
    return summary


def predicted_per_artery(findings, method: str) -> dict[str, float] | None:
    """The findings' per-artery totals; None when the method names no arteries (classical)."""
    per_artery = findings.summary.get("per_artery")
    if per_artery is not None:
        return {a: float(per_artery.get(a, 0.0)) for a in ARTERIES}
    if method in ARTERY_METHODS or any("artery" in lesion.measurements for lesion in findings.lesions):
        return dict.fromkeys(ARTERIES, 0.0)
    return None


def run_patient(
    folder: Path, patient: str, scores: dict, method: str, weights, device: str, heart_region: bool = False
) -> dict:
    """Read one patient and run `method` on it through the platform; a refusal is recorded, never scored 0.

    With `heart_region`, the method runs inside the heart region found from anatomy (as `--region` would)."""
    from LesionDetectLib.app.run import run_detector
    from LesionDetectLib.detection.progress import Progress
    from LesionDetectLib.detection.registry import get_detector
    from LesionDetectLib.detectors.calcium.heart_region import find_heart_region
    from LesionDetectLib.detectors.calcium.options import CalciumParams

    started = time.perf_counter()
    case = read_nongated_case(folder, patient, scores)  # a missing row or folder is the dataset's fault: raise
    volume = case.volume
    scan = {
        "slices": int(volume.array.shape[0]),
        "pixel_mm": [round(float(v), 4) for v in volume.spacing[:2]],
        "slice_mm": round(float(volume.spacing[2]), 4),
    }
    try:
        findings = run_detector(
            get_detector("calcium"),
            volume,
            CalciumParams(surfaces=False, region=find_heart_region(volume).mask if heart_region else None),
            method,
            Progress("none"),
            device=device,
            weights=weights,
        )
    except LesionDetectError as error:
        return refused_record(
            patient, case.reference, str(error), scan=scan, seconds=round(time.perf_counter() - started, 2)
        )
    return scored_record(
        patient,
        case.reference,
        findings.summary["agatston_total"],
        predicted_per_artery(findings, method),
        lesions=len(findings.lesions),
        warnings=list(findings.warnings),
        scan=scan,
        seconds=round(time.perf_counter() - started, 2),
    )


def evaluate_nongated(
    root,
    method: str,
    out: Path,
    *,
    weights=None,
    device: str = "auto",
    patients: list[str] | None = None,
    heart_region: bool = False,
) -> dict:
    """Run `method` on every non-gated patient under `root`; write metrics.json and totals.png into `out`."""
    folder = nongated_folder(root)
    scores = read_nongated_scores(folder / NONGATED_SCORES)
    records = []
    for patient in patients or nongated_patient_ids(folder):
        record = run_patient(folder, patient, scores, method, weights, device, heart_region)
        records.append(record)
        print(patient_line(record), flush=True)
    summary = summarise_real(records)
    summary["method"] = method + (" in the heart region" if heart_region else "")
    summary["weights"] = None if weights is None else str(weights)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps({"summary": summary, "patients": records}, indent=1) + "\n")
    plot_totals(records, out / "totals.png", f"{method} on {len(records)} real non-gated CTs")
    return summary


def patient_line(record: dict) -> str:
    """One printed line per patient: totals, categories and arteries, or why it was refused."""
    reference = record["reference"]
    head = f"patient {record['patient']}: reference {reference['total']:.1f} ({reference['category']})"
    if record["status"] != "scored":
        return f"{head}, REFUSED: {record['message']}"
    predicted = record["predicted"]
    line = f"{head}, predicted {predicted['total']:.1f} ({predicted['category']})"
    line += ", category " + ("agrees" if record["category_agrees"] else "differs")
    if predicted["per_artery"] is not None:
        line += "; " + ", ".join(
            f"{a} {reference['per_artery'][a]:.1f}→{predicted['per_artery'][a]:.1f}"
            + ("" if record["artery_agrees"][a] else "✗")
            for a in ARTERIES
        )
    return line


def summary_lines(summary: dict) -> list[str]:
    category, spearman = summary["category_agreement"], summary["spearman_totals"]
    arteries, zero = summary["artery_within_50pct_or_25"], summary["zero_calcium_below_10"]
    rho = "n/a" if spearman["rho"] is None else f"{spearman['rho']:.3f} (p {spearman['p_value']:.3g})"
    artery_text = (
        arteries.get("note", "n/a")
        if arteries["fraction"] is None
        else f"{arteries['within']}/{arteries['of']} ({arteries['fraction']:.0%})"
    )
    return [
        f"method {summary['method']}: {summary['scored']}/{summary['patients']} scored"
        + (f", refused: {', '.join(summary['refused'])}" if summary["refused"] else ""),
        f"category agreement {category['agree']}/{category['of']}",
        f"Spearman of totals {rho} over {spearman['patients']} patients",
        f"artery scores within 50 % or 25 points: {artery_text}",
        f"zero-calcium patients below {ZERO_CALCIUM_LIMIT:g}: {zero['below']}/{zero['of']}"
        + (f" ({zero['refused']} refused)" if zero["refused"] else ""),
    ]


def plot_totals(records: list[dict], path: Path, title: str) -> None:
    """Predicted against reference total on symmetric-log axes (0 shows), category bounds dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [r for r in records if r["status"] == "scored"]
    refused = [r["patient"] for r in records if r["status"] != "scored"]
    figure, axes = plt.subplots(figsize=(5, 4.4), dpi=120)
    reference = [r["reference"]["total"] for r in scored]
    predicted = [r["predicted"]["total"] for r in scored]
    colours = ["tab:green" if r["category_agrees"] else "tab:red" for r in scored]
    axes.scatter(reference, predicted, s=24, c=colours, zorder=3)
    for record, x, y in zip(scored, reference, predicted):
        axes.annotate(record["patient"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    limit = max([*reference, *predicted, 1000.0]) * 1.5
    for scale in (axes.set_xscale, axes.set_yscale):
        scale("symlog", linthresh=10)
    axes.set_xlim(0, limit)
    axes.set_ylim(0, limit)
    axes.plot([0, limit], [0, limit], color="grey", linestyle=":", zorder=1)
    for bound in (10, 100, 400):
        axes.axvline(bound, color="lightgrey", linewidth=0.8, linestyle="--", zorder=0)
        axes.axhline(bound, color="lightgrey", linewidth=0.8, linestyle="--", zorder=0)
    for colour, meaning in (("tab:green", "category agrees"), ("tab:red", "category differs")):
        axes.scatter([], [], s=24, c=colour, label=meaning)
    axes.legend(fontsize=7, loc="lower right")
    axes.set_xlabel("reference total Agatston (scores.xlsx)")
    axes.set_ylabel("predicted total Agatston")
    axes.set_title(title, fontsize=9)
    if refused:
        axes.text(
            0.02,
            0.98,
            f"refused: {', '.join(refused)}",
            transform=axes.transAxes,
            va="top",
            fontsize=8,
            color="tab:red",
        )
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", default="deep", choices=("deep", "classical"), help="calcium method to evaluate")
    parser.add_argument("--weights", type=Path, help="model manifest for the deep method (default: the installed one)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda (as the CLI's --device)")
    parser.add_argument("--patients", nargs="+", help="patient folders to run (default: all)")
    parser.add_argument(
        "--heart-region", action="store_true", help="run inside the heart region found from anatomy (as --region)"
    )


def run_from_arguments(args, parser: argparse.ArgumentParser) -> int:
    if args.weights is not None and args.method != "deep":
        parser.error(f"--weights is for the deep method; the {args.method} method takes none.")
    summary = evaluate_nongated(
        args.nongated,
        args.method,
        args.out,
        weights=args.weights,
        device=args.device,
        patients=args.patients,
        heart_region=args.heart_region,
    )
    print("\n".join(summary_lines(summary)))
    print(f"wrote {args.out / 'metrics.json'} and {args.out / 'totals.png'}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nongated", type=Path, required=True, help="the deidentified_nongated folder (or its parent)")
    parser.add_argument("--out", type=Path, required=True)
    add_arguments(parser)
    return run_from_arguments(parser.parse_args(argv), parser)


if __name__ == "__main__":
    sys.exit(main())
