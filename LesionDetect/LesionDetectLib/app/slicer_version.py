"""Which desktop Slicer the extension runs in, checked when the module loads.

Slicer 5.8 and earlier ship Python 3.9, too old for the worker's pinned packages (scikit-image 0.26,
numpy 2.x, MONAI 1.6) and for the package itself; Slicer moved to Python 3.12 in June 2025
(Slicer/Slicer pull request 8456), first released in Slicer 5.10.0 (November 2025).

This file must import and run on Python 3.9, so that an old Slicer shows the message instead of a
syntax error.
"""

from __future__ import annotations

MINIMUM_SLICER = (5, 10)
MINIMUM_SLICER_PYTHON = (3, 12)  # the Python that Slicer 5.10 ships
REQUIRES_PYTHON = (3, 11)  # pyproject.toml's requires-python; the worker's packages need it


def slicer_version_problem(major: int, minor: int, python_version) -> str | None:
    """Why this Slicer cannot run LesionDetect (a message to show the user), or None when it can."""
    python = tuple(python_version[:2])
    python_text = ".".join(str(part) for part in python)
    if (major, minor) < MINIMUM_SLICER:
        return (
            f"LesionDetect needs 3D Slicer {MINIMUM_SLICER[0]}.{MINIMUM_SLICER[1]} or later; this is Slicer "
            f"{major}.{minor} (Python {python_text}). Install the current Slicer release from download.slicer.org "
            "and add LesionDetect there."
        )
    if python < REQUIRES_PYTHON:
        return (
            f"LesionDetect needs Python {REQUIRES_PYTHON[0]}.{REQUIRES_PYTHON[1]} or later, but this Slicer "
            f"{major}.{minor} runs Python {python_text}. Use an official Slicer release "
            f"{MINIMUM_SLICER[0]}.{MINIMUM_SLICER[1]} or later."
        )
    return None
