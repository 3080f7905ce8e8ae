"""Coronary stenosis in X-ray angiography: the detector as the platform sees it.

Light at import: the network, key frames and the model are imported when it runs.
"""

from __future__ import annotations

from pathlib import Path

from LesionDetectLib.detection.detector import Detector, InputKind, Method
from LesionDetectLib.detectors.stenosis.model import DEFAULT_MANIFEST
from LesionDetectLib.detectors.stenosis.options import StenosisOptions

HERE = Path(__file__).parent


class StenosisDetector(Detector):
    id = "stenosis"
    title = "Coronary stenosis"
    input_kinds = (InputKind.SEQUENCE, InputKind.IMAGE)
    modalities = ("XA", "RF", "OT")  # angiography, fluoroscopy, "other" (exports); files without a modality pass
    methods = (
        Method(
            "deep",
            "text masked → 5 key frames by Hessian vessel filling → CNN + self-attention per frame → majority vote; "
            "attention × Grad-CAM heatmap and boxes",
            needs_torch=True,
            weights=DEFAULT_MANIFEST,
            packages={"monai": "monai==1.6.1", "einops": "einops>=0.7"},
        ),
    )
    Options = StenosisOptions
    label_colors = {"suspected stenosis": (1.0, 0.35, 0.1)}
    schema_fragment = HERE / "report.schema.json"

    def check(self, image, options) -> None:
        from LesionDetectLib.detectors.stenosis.checks import check_angiogram, refuse_volume

        refuse_volume(image)
        super().check(image, options)
        check_angiogram(image)

    def run(self, image, options, method, device="cpu", progress=None, cancel=None, weights=None):
        from LesionDetectLib.detectors.stenosis.detect import detect_stenosis
        from LesionDetectLib.detectors.stenosis.model import load_stenosis_model

        self.method(method)
        model = load_stenosis_model(Path(weights) if weights else DEFAULT_MANIFEST)
        return detect_stenosis(image, model, options, device, progress)

    def scenarios(self):
        """The self-test scenario, once a model is shipped (it runs the network)."""
        from LesionDetectLib.detectors.stenosis import scenarios

        return scenarios.SCENARIOS if DEFAULT_MANIFEST.is_file() else []

    def sample(self):
        from LesionDetectLib.detectors.stenosis.sample import read_sample

        return read_sample()

    def summary_line(self, findings) -> str:
        """e.g. "stenosis 0.86 (4 of 5 key frames vote stenosis)"; "normal (stenosis 0.12, one frame)"."""
        summary = findings.summary
        if summary["mode"] == "frame":
            basis = "one frame"
        else:
            basis = f"{summary['votes']} of {len(summary['key_frames'])} key frames vote stenosis"
        if summary["verdict"] == "stenosis":
            return f"stenosis {summary['probability']:.2f} ({basis})"
        return f"normal (stenosis {summary['probability']:.2f}, {basis})"

    def summary_lines(self, findings) -> list[str]:
        lines = [self.summary_line(findings)]
        lines.append(
            " · ".join(f"frame {row['frame']} {row['probability']:.2f}" for row in findings.summary["key_frames"])
        )
        return lines
