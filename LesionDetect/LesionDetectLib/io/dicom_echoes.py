"""Multi-echo series: several images at each slice position, told apart by EchoNumbers or EchoTime.

Without a choice the series is refused with its echoes listed; `echo="N"` picks echo N and
`echo="combine"` asks for the root sum of squares over all echoes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.dicom_files import DicomImage

COMBINE = "combine"


@dataclass(frozen=True)
class Echo:
    """The images of one echo of a series."""

    number: int
    time_ms: float | None
    images: list[DicomImage]

    @property
    def echo_time_text(self) -> str:
        return f" (TE {self.time_ms:g} ms)" if self.time_ms is not None else ""


def split_echoes(images: list[DicomImage]) -> list[Echo]:
    """One `Echo` per echo when images with different echoes share slice positions; else one for all."""
    positions = {tuple(np.round(image.plane.position_lps, 2)) for image in images}
    by_number = all(image.echo_number is not None for image in images)
    groups: dict[float, list[DicomImage]] = {}
    for image in images:
        key = image.echo_number if by_number else image.echo_time_ms
        groups.setdefault(-1.0 if key is None else float(key), []).append(image)
    if len(positions) == len(images) or len(groups) == 1:
        return [Echo(images[0].echo_number or 1, images[0].echo_time_ms, images)]
    ordered = sorted(groups.items())
    return [
        Echo(int(key) if by_number else rank, members[0].echo_time_ms, members)
        for rank, (key, members) in enumerate(ordered, start=1)
    ]


def choose_echoes(source: str, echoes: list[Echo], echo: str | None) -> tuple[list[Echo], list[str]]:
    """The echoes to read for `echo` (None, "N" or "combine") and the note saying which; refuse otherwise.

    `source` starts the messages, e.g. "The series in '/data/mr'".
    """
    if len(echoes) == 1:
        refuse_echo_choice(source, echo)
        return echoes, []
    echo = None if echo is None else str(echo).strip()
    listing = ", ".join(f"echo {item.number}{item.echo_time_text}" for item in echoes)
    how = (
        f"choose one with --echo N (for example --echo {echoes[0].number}), "
        f"or --echo {COMBINE} for their root sum of squares"
    )
    if echo is None:
        raise LesionDetectError(f"{source} holds {len(echoes)} echoes at each slice position: {listing}; {how}.")
    if echo.lower() == COMBINE:
        return echoes, [f"{len(echoes)} echoes combined (root sum of squares)"]
    chosen = [item for item in echoes if echo == str(item.number)]
    if not chosen:
        raise LesionDetectError(f"{source} has no echo '{echo}'; it holds {listing}; {how}.")
    return chosen, [f"echo {chosen[0].number} of {len(echoes)}{chosen[0].echo_time_text} read"]


def refuse_echo_choice(source: str, echo: str | None) -> None:
    """Refuse an echo choice for an input that has a single echo."""
    if echo is not None:
        raise LesionDetectError(f"{source} is not a multi-echo series, but echo '{echo}' was chosen; leave out --echo.")
