"""The interface every detector implements, read by the CLI, report, scene, panel and self-tests.

A detector is a `Detector` subclass in `detectors/<id>/`; the registry finds it by walking that
package. Its `Options` dataclass is the one description of its settings: the CLI flags, the panel's
options box and the report's `params` are all generated from its fields (see `options.py`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from LesionDetectLib.detection.findings import Findings, Image
from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.volume import Volume

Progress = Callable[[str, float, str], None]
Cancel = Callable[[], bool]


class InputKind(enum.Enum):
    """What a detector looks at."""

    VOLUME = "volume"  # a 3D scan with patient geometry
    IMAGE = "image"  # one 2D image
    SEQUENCE = "sequence"  # 2D frames over time (cine)

    @classmethod
    def of(cls, image: Image) -> InputKind:
        if isinstance(image, Volume):
            return cls.VOLUME
        return cls.IMAGE if image.is_single_image else cls.SEQUENCE


@dataclass(frozen=True)
class Method:
    """One way a detector can run, and what it needs: torch, a weights manifest, extra packages."""

    name: str
    description: str
    needs_torch: bool = False
    weights: Path | None = None  # the shipped manifest; the method is available only when it exists
    packages: dict[str, str] = field(default_factory=dict)  # import name → pip requirement

    @property
    def available(self) -> bool:
        """Whether it can run here: its shipped weights are installed (methods without weights always are)."""
        return self.weights is None or self.weights.is_file()


@dataclass(frozen=True)
class Column:
    """A lesion measurement as people read it: its key, table header, words in a description, table cell."""

    key: str
    title: str
    text: str = ""  # in the one-line lesion description, e.g. "volume {:.1f} mm³"; "" writes "key value"
    cell: str = "{:g}"  # a table cell, e.g. "{:.1f}"


@dataclass
class NoOptions:
    """For detectors without settings."""


class Detector:
    """Base class: declare the class attributes, implement `run` (and `check` beyond the basics)."""

    id: ClassVar[str]
    title: ClassVar[str]
    input_kinds: ClassVar[tuple[InputKind, ...]] = (InputKind.VOLUME,)
    modalities: ClassVar[tuple[str, ...]] = ()  # DICOM modality codes accepted; empty: any
    methods: ClassVar[tuple[Method, ...]] = ()  # best first
    Options: ClassVar[type] = NoOptions
    columns: ClassVar[tuple[Column, ...]] = ()  # lesion measurements shown first in tables, in this order
    label_colors: ClassVar[dict[str, tuple[float, float, float]]] = {}
    schema_fragment: ClassVar[Path | None] = None  # JSON Schema for this detector's summary and lesions
    live_options: ClassVar[tuple[str, ...]] = ()  # options `refiltered` applies to findings without a rerun

    @property
    def method_names(self) -> tuple[str, ...]:
        return tuple(method.name for method in self.methods)

    @property
    def default_method(self) -> str:
        """The best method that can run here (the best of all when none can: running it says what is missing)."""
        return next((method.name for method in self.methods if method.available), self.methods[0].name)

    def method(self, name: str) -> Method:
        for method in self.methods:
            if method.name == name:
                return method
        raise LesionDetectError(f"The {self.title} detector has no method '{name}'; choose one of {self.method_names}.")

    def check(self, image: Image, options) -> None:
        """Refuse input this detector cannot look at, naming the problem; subclasses add their own checks."""
        kind = InputKind.of(image)
        if kind not in self.input_kinds:
            accepted = " or ".join(k.value for k in self.input_kinds)
            raise LesionDetectError(
                f"'{image.name}' is a {kind.value}, but the {self.title} detector needs a {accepted}."
            )
        image.validate()
        if self.modalities and image.modality and image.modality.upper() not in self.modalities:
            raise LesionDetectError(
                f"'{image.name}' is {image.modality}, but the {self.title} detector needs "
                f"{' or '.join(self.modalities)}."
            )

    def run(
        self,
        image: Image,
        options,
        method: str,
        device: str = "cpu",
        progress: Progress | None = None,
        cancel: Cancel | None = None,
        weights: Path | None = None,
    ) -> Findings:
        raise NotImplementedError

    def refiltered(self, findings: Findings, options) -> Findings:
        """The findings at new values of the `live_options` (e.g. another operating point), without a rerun."""
        raise NotImplementedError(f"the {self.title} detector has no live options")

    def summary_line(self, findings: Findings) -> str:
        """One line for the snapshot title, the CLI and the panel."""
        count = len(findings.lesions)
        return f"{count} lesion{'' if count == 1 else 's'}"

    def summary_lines(self, findings: Findings) -> list[str]:
        """The CLI's and panel's closing lines (by default the summary line)."""
        return [self.summary_line(findings)]

    def sample(self) -> Image | None:
        """A bundled input to run on (`lesiondetect <id> --sample`), or None."""
        return None

    def snapshot_context(self, findings: Findings):
        """A surface drawn faintly behind the findings in the snapshot (e.g. bone), or None."""
        return None

    def scenarios(self) -> list[Callable]:
        """Self-test scenarios (functions of a scene and a scratch folder) this detector brings."""
        return []


def no_progress(stage: str, fraction: float, message: str = "") -> None:
    """A progress callback that says nothing."""


def never_cancelled() -> bool:
    return False
