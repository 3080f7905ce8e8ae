"""Put the core package `LesionDetectLib` on the import path for every test."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "LesionDetect"))
