"""The Slicer self-test bodies, run on a real slicer-core scene."""

import pytest

from LesionDetectLib import scenarios

SCENARIOS = [name for name in dir(scenarios) if name.startswith("scenario_")]


def test_there_are_scenarios():
    assert len(SCENARIOS) >= 2


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario(name, mrml_scene, tmp_path):
    getattr(scenarios, name)(mrml_scene, tmp_path)
