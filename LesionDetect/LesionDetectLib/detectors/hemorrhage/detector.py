"""Intracranial hemorrhage on head CT: the detector as the platform sees it.

Light at import: the network, Grad-CAM and the model are imported when it runs.
"""

from __future__ import annotations

from pathlib import Path

from LesionDetectLib.detection.detector import Detector, InputKind, Method
from LesionDetectLib.detectors.hemorrhage.labels import LABELS
from LesionDetectLib.detectors.hemorrhage.model import DEFAULT_MANIFEST
from LesionDetectLib.detectors.hemorrhage.options import HemorrhageOptions

HERE = Path(__file__).parent


class HemorrhageDetector(Detector):
    id = "hemorrhage"
    title = "Intracranial hemorrhage"
    input_kinds = (InputKind.VOLUME, InputKind.IMAGE)
    modalities = ("CT",)
    methods = (
        Method(
            "deep",
            "three HU windows → per-slice CNN → PCA to 120 → 3-layer BiLSTM over slices; Grad-CAM of positive labels",
            needs_torch=True,
            weights=DEFAULT_MANIFEST,
            packages={"monai": "monai==1.6.1"},
        ),
    )
    Options = HemorrhageOptions
    label_colors = {
        "any": (1.0, 0.3, 0.3),
        "epidural": (0.95, 0.55, 0.1),
        "intraparenchymal": (0.9, 0.1, 0.1),
        "intraventricular": (0.6, 0.2, 0.8),
        "subarachnoid": (0.1, 0.6, 0.9),
        "subdural": (0.95, 0.85, 0.1),
    }
    schema_fragment = HERE / "report.schema.json"

    def check(self, image, options) -> None:
        from LesionDetectLib.detectors.hemorrhage.checks import check_head_ct
        from LesionDetectLib.io.volume import Volume

        super().check(image, options)
        if isinstance(image, Volume):
            check_head_ct(image)

    def run(self, image, options, method, device="cpu", progress=None, cancel=None, weights=None):
        from LesionDetectLib.detectors.hemorrhage.detect import detect_hemorrhage, detect_key_image
        from LesionDetectLib.detectors.hemorrhage.model import load_hemorrhage_model
        from LesionDetectLib.io.volume import Volume

        self.method(method)
        model = load_hemorrhage_model(Path(weights) if weights else DEFAULT_MANIFEST)
        if isinstance(image, Volume):
            return detect_hemorrhage(image, model, options, device, progress)
        return detect_key_image(image, model, options, device, progress)

    def sample(self):
        from LesionDetectLib.detectors.hemorrhage.sample import read_sample

        return read_sample()

    def snapshot_context(self, findings):
        """The skull (300 HU) on a coarse grid, drawn faintly around the boxes; none for a key image."""
        from LesionDetectLib.detectors.hemorrhage.anatomy import BONE_HU
        from LesionDetectLib.io.volume import Volume
        from LesionDetectLib.results.meshes import coarse_iso_surface

        if not isinstance(findings.image, Volume):
            return None
        return coarse_iso_surface(findings.image, BONE_HU, [])

    def scenarios(self):
        from LesionDetectLib.detectors.hemorrhage import scenarios

        return scenarios.SCENARIOS

    def summary_line(self, findings) -> str:
        """e.g. "hemorrhage: any 0.97 (subdural 0.91)"; "no hemorrhage (any 0.03)"."""
        probabilities = findings.summary["probabilities"]
        positive = [label for label in findings.summary["positive"] if label != LABELS[0]]
        if LABELS[0] not in findings.summary["positive"] and not positive:
            return f"no hemorrhage (any {probabilities['any']:.2f})"
        subtypes = ", ".join(f"{label} {probabilities[label]:.2f}" for label in positive)
        return f"hemorrhage: any {probabilities['any']:.2f}" + (f" ({subtypes})" if subtypes else "")

    def summary_lines(self, findings) -> list[str]:
        lines = [self.summary_line(findings)]
        probabilities = findings.summary["probabilities"]
        lines.append(" · ".join(f"{label} {probabilities[label]:.2f}" for label in LABELS))
        return lines
