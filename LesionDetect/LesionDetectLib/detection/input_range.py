"""The input range a model was trained for (pixel size, slice spacing), and what a run outside it gets.

A model's manifest carries `input_range`: {"pixel_mm": [low, high], "slice_mm": [low, high]}, measured
on its training scans. A volume inside the range runs as usual; one a little outside (by at most
`TOLERANCE` of the bound) runs with a warning in the report; one further out is refused, because the
model cannot be trusted to look at it, and a detector must never report "nothing found" on such input.
"""

from __future__ import annotations

from dataclasses import dataclass

from LesionDetectLib.errors import LesionDetectError
from LesionDetectLib.io.volume import Volume

TOLERANCE = 0.25


@dataclass(frozen=True)
class InputRange:
    pixel_mm: tuple[float, float] | None = None
    slice_mm: tuple[float, float] | None = None

    @classmethod
    def from_manifest(cls, manifest: dict) -> InputRange | None:
        declared = manifest.get("input_range")
        if not declared:
            return None
        return cls(
            tuple(declared["pixel_mm"]) if declared.get("pixel_mm") else None,
            tuple(declared["slice_mm"]) if declared.get("slice_mm") else None,
        )

    def as_dict(self) -> dict:
        return {"pixel_mm": list(self.pixel_mm or ()), "slice_mm": list(self.slice_mm or ())}


def range_warnings(volume: Volume, input_range: InputRange | None, model_name: str, alternative: str) -> list[str]:
    """Warnings for a volume a little outside the model's range; refuses one far outside it.

    `alternative` says what the user can do instead (e.g. another method).
    """
    if input_range is None:
        return [f"The {model_name} declares no trained pixel or slice range; this scan was not checked against one."]
    measured = {
        "pixel size": (float(min(volume.spacing[:2])), float(max(volume.spacing[:2])), input_range.pixel_mm),
        "slice spacing": (float(volume.spacing[2]),) * 2 + (input_range.slice_mm,),
    }
    warnings = []
    for what, (smallest, largest, bounds) in measured.items():
        if bounds is None:
            continue
        low, high = bounds
        if low <= smallest and largest <= high:
            continue
        value = f"{largest:.2f} mm" if largest > high else f"{smallest:.2f} mm"
        said = f"This scan's {what} is {value}; the {model_name} was trained on {low:g}–{high:g} mm"
        if smallest < low * (1 - TOLERANCE) or largest > high * (1 + TOLERANCE):
            raise LesionDetectError(f"{said}, too far outside that range for it to find lesions. {alternative}")
        warnings.append(f"{said}: it may miss lesions on this scan.")
    return warnings
