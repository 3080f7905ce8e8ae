"""Choosing where networks run: `auto` takes CUDA when present and falls back to the CPU."""

from __future__ import annotations

from LesionDetectLib.errors import LesionDetectError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(requested: str = "auto", needs_torch: bool = False) -> tuple[str, str]:
    """Return (device, message). Methods without networks run on the CPU whatever was asked."""
    if requested not in DEVICE_CHOICES:
        raise LesionDetectError(f"--device must be one of {', '.join(DEVICE_CHOICES)}, not '{requested}'.")
    if not needs_torch:
        return "cpu", "This method has no neural network: it runs on the CPU."
    try:
        import torch
    except ImportError:
        raise LesionDetectError("PyTorch is not installed; install it (in Slicer: the PyTorch extension).") from None
    cuda = torch.cuda.is_available()
    if requested == "cuda" and not cuda:
        raise LesionDetectError("--device cuda was asked for, but no CUDA GPU is available to PyTorch.")
    if requested == "cpu" or not cuda:
        return "cpu", "Running on the CPU" + ("" if requested == "cpu" else " (no CUDA GPU found).")
    return "cuda", f"Running on the GPU: {torch.cuda.get_device_name(0)}."
