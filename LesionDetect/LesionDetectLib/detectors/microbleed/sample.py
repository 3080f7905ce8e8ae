"""The bundled sample: a synthetic SWI magnitude with known microbleeds, veins and calcifications
(written by training/make_microbleed_sample.py; the microbleeds' centres are in the .json beside it)."""

from __future__ import annotations

from pathlib import Path

SAMPLE_PATH = Path(__file__).with_name("sample_swi.nrrd")


def read_sample():
    from LesionDetectLib.io.read_input import read_input

    return read_input(SAMPLE_PATH)
