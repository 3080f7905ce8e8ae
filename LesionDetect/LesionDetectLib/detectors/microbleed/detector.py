"""Cerebral microbleeds on SWI / T2*-GRE MRI: the detector as the platform sees it.

Light at import: the network, N4 and the model are imported when it runs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from LesionDetectLib.detection.detector import Column, Detector, InputKind, Method
from LesionDetectLib.detectors.microbleed.model import DEFAULT_MANIFEST
from LesionDetectLib.detectors.microbleed.options import MicrobleedOptions

HERE = Path(__file__).parent


class MicrobleedDetector(Detector):
    id = "microbleed"
    title = "Cerebral microbleeds"
    input_kinds = (InputKind.VOLUME,)
    modalities = ("MR",)
    methods = (
        Method(
            "deep",
            "N4 + normalisation → SSD on axial slices (three depths each) → slice boxes merged in 3D",
            needs_torch=True,
            weights=DEFAULT_MANIFEST,
            packages={"monai": "monai==1.6.1"},
        ),
    )
    Options = MicrobleedOptions
    columns = (
        Column("diameter_mm", "Diameter (mm)", "diameter {:.1f} mm", "{:.1f}"),
        Column("location", "Location", "{}", "{}"),
        Column("slice_range", "Slices", "slices {}", "{}"),
    )
    label_colors = {"microbleed": (0.2, 0.8, 1.0)}
    schema_fragment = HERE / "report.schema.json"
    live_options = ("sensitivity",)

    def check(self, image, options) -> None:
        from LesionDetectLib.detectors.microbleed.checks import check_swi

        super().check(image, options)
        check_swi(image)

    def run(self, image, options, method, device="cpu", progress=None, cancel=None, weights=None):
        from LesionDetectLib.detectors.microbleed.detect import detect_microbleeds
        from LesionDetectLib.detectors.microbleed.model import load_microbleed_model

        self.method(method)
        model = load_microbleed_model(Path(weights) if weights else DEFAULT_MANIFEST)
        return detect_microbleeds(image, model, options, device, progress)

    def refiltered(self, findings, options):
        """The same candidates split at another validation sensitivity (results read back from a folder that
        kept no candidates split their lesions alone)."""
        from LesionDetectLib.detectors.microbleed.detect import split_at, summary

        points = findings.summary["operating_points"]
        every = sorted(findings.lesions + (findings.candidates or []), key=lambda lesion: lesion.id)
        microbleeds, candidates, point = split_at(every, points, options.sensitivity)
        return dataclasses.replace(
            findings,
            lesions=microbleeds,
            candidates=candidates,
            summary=summary(microbleeds, point, points, findings.summary["location_source"]),
            params={**findings.params, "sensitivity": options.sensitivity},
        )

    def scenarios(self):
        """The self-test scenario, once a model is shipped (it runs the network)."""
        from LesionDetectLib.detectors.microbleed import scenarios

        return scenarios.SCENARIOS if DEFAULT_MANIFEST.is_file() else []

    def sample(self):
        from LesionDetectLib.detectors.microbleed.sample import read_sample

        return read_sample()

    def summary_line(self, findings) -> str:
        """e.g. "3 microbleeds (2 lobar, 1 deep) at 90 % sensitivity"."""
        s = findings.summary
        count = f"{s['count']} microbleed{'' if s['count'] == 1 else 's'}"
        where = f" ({s['lobar']} lobar, {s['deep']} deep)" if s["count"] else ""
        return f"{count}{where} at {100 * s['operating_point']['sensitivity']:.0f} % sensitivity"

    def summary_lines(self, findings) -> list[str]:
        guess = " (position-based guess)" if findings.summary["location_source"] == "position guess" else ""
        return [
            self.summary_line(findings) + guess,
            f"{len(findings.candidates)} candidate(s) below the operating point",
        ]
