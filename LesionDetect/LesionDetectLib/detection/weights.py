"""Shipped weights: a safetensors file named by a JSON manifest with its sha256, checked before use, never unpickled.

Each detector's model module says what its manifest must hold and builds its network; these helpers find
the models folder, read the manifest, check the file's hash and the tensors' shapes, with errors that name
the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from LesionDetectLib.errors import LesionDetectError

MODELS_DIR = next(  # wheel: LesionDetectLib/Resources/Models; source tree and Slicer: LesionDetect/Resources/Models
    (d for d in (Path(__file__).resolve().parents[i] / "Resources" / "Models" for i in (1, 2)) if d.is_dir()),
    Path(__file__).resolve().parents[2] / "Resources" / "Models",
)


@dataclass
class NetworkModel:
    """A loaded network bundle: the network (eval mode, CPU), its input side, its manifest and file hash."""

    network: object
    input_size: int
    manifest: dict
    sha256: str

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def caution(self) -> str | None:
        """What the model card says every result must carry (e.g. trained on synthetic data only), or None."""
        return self.manifest.get("caution")

    @property
    def caution_warnings(self) -> list[str]:
        """The caution as the one warning a report carries, or none."""
        return [f"Model {self.version}: {self.caution}"] if self.caution else []


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(path: Path, required: set[str], what: str, when_missing: str) -> dict:
    """The manifest at `path`, with every `required` key; `what` names the model, `when_missing` says what to do."""
    try:
        manifest = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LesionDetectError(f"No {what} at '{path}': {when_missing}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise LesionDetectError(f"The {what} manifest '{path}' is not valid JSON ({error}).") from None
    missing = required - set(manifest)
    if missing:
        raise LesionDetectError(f"The {what} manifest '{path}' lacks {', '.join(sorted(missing))}.")
    return manifest


def checked_weights_path(manifest_path: Path, manifest: dict, what: str, weights_path: Path | None = None):
    """(path, sha256) of the manifest's weights file, refused when it is missing or its hash differs."""
    weights_path = Path(weights_path or Path(manifest_path).parent / manifest["weights"])
    if not weights_path.is_file():
        raise LesionDetectError(f"The {what} weights '{weights_path}' are missing.")
    sha256 = file_sha256(weights_path)
    if sha256 != manifest["sha256"]:
        raise LesionDetectError(
            f"'{weights_path}' is not the {what}'s weights file: its sha256 is {sha256}, the manifest "
            f"'{Path(manifest_path).name}' expects {manifest['sha256']}."
        )
    return weights_path, sha256


def install_bundle(manifest_path: Path) -> None:
    """Copy a trained bundle (manifest and the weights it names) into the models folder the detectors load from."""
    import shutil

    manifest_path = Path(manifest_path)
    weights = manifest_path.parent / json.loads(manifest_path.read_text())["weights"]
    for path in (manifest_path, weights):
        shutil.copy2(path, MODELS_DIR / path.name)


def config_arguments(config: dict) -> dict:
    """JSON lists back to the tuples a configuration dataclass holds."""
    return {name: tuple(value) if isinstance(value, list) else value for name, value in config.items()}


def check_shapes(path: Path, expected: dict, found: dict, network: str) -> None:
    """Refuse tensors that are missing, unexpected or of the wrong shape for `network` (a state dict)."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(
        name for name in set(expected) & set(found) if tuple(expected[name].shape) != tuple(found[name].shape)
    )
    if missing or unexpected or wrong:
        details = "; ".join(
            f"{label}: {', '.join(names[:3])}{' …' if len(names) > 3 else ''}"
            for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
            if names
        )
        raise LesionDetectError(f"'{path}' does not fit the {network} ({details}).")


NETWORK_MANIFEST_KEYS = {"version", "weights", "sha256", "network", "input_size"}


def load_network_bundle(manifest_path: Path, weights_path: Path | None, what: str, when_missing: str, build):
    """A network saved by `save_network_bundle`: the manifest read, the weights' hash and every tensor's shape
    checked, `build(config)` given the manifest's network configuration; (network in eval mode, manifest, sha256)."""
    from safetensors.torch import load_file

    manifest = read_manifest(manifest_path, NETWORK_MANIFEST_KEYS, what, when_missing)
    weights_path, sha256 = checked_weights_path(manifest_path, manifest, what, weights_path)
    tensors = load_file(str(weights_path))
    network = build(config_arguments(manifest["network"]))
    check_shapes(weights_path, network.state_dict(), tensors, what)
    network.load_state_dict(tensors)
    return network.eval(), manifest, sha256


def save_network_bundle(network, input_size: int, folder: Path, stem: str, card: dict) -> Path:
    """Write `<stem>.safetensors` (float32) and its manifest `<stem>.json` (the card, the hash, the network's
    dataclass configuration, the input size); return the manifest path."""
    from dataclasses import asdict

    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    weights_path = folder / f"{stem}.safetensors"
    tensors = {name: value.detach().cpu().contiguous() for name, value in network.state_dict().items()}
    save_file(tensors, str(weights_path))
    manifest = {
        **card,
        "weights": weights_path.name,
        "sha256": file_sha256(weights_path),
        "network": asdict(network.config),
        "input_size": int(input_size),
    }
    manifest_path = folder / f"{stem}.json"
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest_path
