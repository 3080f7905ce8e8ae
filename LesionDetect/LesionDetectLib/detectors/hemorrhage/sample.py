"""The bundled sample: a synthetic head CT with a known intraparenchymal and subdural hemorrhage
(written by training/make_hemorrhage_sample.py; its labels are in the .json beside it)."""

from __future__ import annotations

from pathlib import Path

SAMPLE_PATH = Path(__file__).with_name("sample_head_ct.nrrd")


def read_sample():
    from LesionDetectLib.io.read_input import read_input

    return read_input(SAMPLE_PATH)
