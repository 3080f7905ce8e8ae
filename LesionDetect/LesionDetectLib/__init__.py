"""LesionDetect core: Qt-free detection logic shared by the Slicer module, the CLI and tests."""

__version__ = "0.1.0"
