"""Coronary artery calcium on non-contrast CT: the detector as the platform sees it.

Light at import (the panel lists detectors before the stages' packages are installed): the stages,
the model and the sample are imported when they run.
"""

from __future__ import annotations

from pathlib import Path

from LesionDetectLib.detection.detector import Column, Detector, InputKind, Method
from LesionDetectLib.detection.input_range import range_warnings
from LesionDetectLib.detectors.calcium.model import DEFAULT_MANIFEST
from LesionDetectLib.detectors.calcium.options import CalciumParams

HERE = Path(__file__).parent
NETWORK_PACKAGES = {"monai": "monai==1.6.1"}
OUT_OF_RANGE_ADVICE = (
    "Use --method classical (in the panel: the classical method) with a heart region, "
    "or a scan reconstructed at the model's pixel size and slice spacing."
)
BONE_CONTEXT_HU = 200.0  # CT iso-surface of bone drawn faintly in the snapshot for orientation


class CalciumDetector(Detector):
    id = "calcium"
    title = "Coronary artery calcium"
    input_kinds = (InputKind.VOLUME,)
    modalities = ("CT",)
    methods = (
        Method(
            "deep",
            "heart region → ACF candidates → SSD on a clipped ResNet-50; coronary calcium only",
            needs_torch=True,
            weights=DEFAULT_MANIFEST,
            packages=NETWORK_PACKAGES,
        ),
        Method("classical", "the clinical Agatston procedure on a threshold (every calcium-like structure)"),
    )
    Options = CalciumParams
    columns = (
        Column("artery", "Artery", "{}", "{}"),
        Column("agatston", "Agatston", "Agatston {:.1f}", "{:.1f}"),
        Column("volume_mm3", "Volume (mm³)", "volume {:.1f} mm³", "{:.1f}"),
        Column("mass_mg", "Mass (mg)", "mass {:.1f} mg", "{:.1f}"),
        Column("peak_hu", "Peak (HU)", "peak {:.0f} HU", "{:.0f}"),
    )
    label_colors = {"calcium": (1.0, 0.82, 0.18)}
    schema_fragment = HERE / "report.schema.json"

    def check(self, image, options: CalciumParams) -> None:
        from LesionDetectLib.detectors.calcium.classical import check_input

        super().check(image, options)
        check_input(image, options.region)

    def run(self, image, options, method, device="cpu", progress=None, cancel=None, weights=None):
        if method == "deep":
            from LesionDetectLib.detectors.calcium.deep import detect_calcium_deep
            from LesionDetectLib.detectors.calcium.model import load_calcium_model

            model = load_calcium_model(Path(weights) if weights else DEFAULT_MANIFEST)
            warnings = range_warnings(image, model.input_range, "deep calcium model", OUT_OF_RANGE_ADVICE)
            findings = detect_calcium_deep(image, model, options, device, progress)
            findings.warnings += warnings
            return findings
        from LesionDetectLib.detectors.calcium.classical import detect_calcium

        self.method(method)
        return detect_calcium(image, options, progress)

    def summary_line(self, findings) -> str:
        """e.g. "Agatston 123 (101-400) · 9 lesions"; the lesion count alone when there is no score."""
        count = len(findings.lesions)
        parts = [f"{count} lesion{'' if count == 1 else 's'}"]
        total = findings.summary.get("agatston_total")
        if total is not None:
            category = findings.summary.get("category")
            parts.insert(0, f"Agatston {total:.0f}" + (f" ({category})" if category else ""))
        return " · ".join(parts)

    def summary_lines(self, findings) -> list[str]:
        """Score, category, CAC-DRS and what the total counts."""
        summary = findings.summary
        if "agatston_total" not in summary:
            return [self.summary_line(findings)]
        return [
            f"Agatston {summary['agatston_total']:.1f} (category {summary['category']}, CAC-DRS {summary['cac_drs']})",
            summary["scope_note"],
        ]

    def sample(self):
        from LesionDetectLib.detectors.calcium.sample import make_sample

        return make_sample()[0]

    def snapshot_context(self, findings):
        """Bone at 200 HU on a coarse grid, the lesion boxes cut out so the lesions stay visible."""
        from LesionDetectLib.results.meshes import coarse_iso_surface

        volume = findings.volume
        if not _looks_like_ct(volume):
            return None
        return coarse_iso_surface(volume, BONE_CONTEXT_HU, [lesion.box_ijk for lesion in findings.lesions])

    def scenarios(self):
        from LesionDetectLib.detectors.calcium import scenarios

        return scenarios.SCENARIOS


def _looks_like_ct(volume) -> bool:
    """CT by its DICOM modality or, when unknown, by air below -500 HU."""
    if volume.modality:
        return volume.modality.upper() == "CT"
    return volume.array.dtype.kind == "i" and volume.array.min() < -500
