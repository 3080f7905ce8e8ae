"""Re-measure a trained microbleed model's operating points on its validation scans with the current pipeline.

    python training/remeasure_microbleed.py runs/mb/microbleed.json --out runs/mb-remeasured [--workers 2]

The operating points (score per validation sensitivity) belong to the whole 3D pipeline, not the network alone:
after a change to preprocessing or merging they must be measured again before the model is installed. Same
weights, same validation seeds (the card's config), `evaluate_microbleed.scan_scores` over worker processes;
the card keeps the previous 90 % point under `remeasured`. Writes microbleed.safetensors + microbleed.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "LesionDetect"))

from evaluate_microbleed import scan_scores_in_workers  # noqa: E402
from microbleed_evaluation import at_sensitivity, operating_points  # noqa: E402

from LesionDetectLib.detectors.microbleed.model import load_microbleed_model, save_microbleed_model  # noqa: E402

BUNDLE_FIELDS = ("weights", "sha256", "network", "input_size")  # written again by save_microbleed_model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    model = load_microbleed_model(args.manifest)
    if args.out.resolve() == args.manifest.parent.resolve():
        parser.error("--out must be another folder: the measured bundle is kept as it was")
    seeds = range(*model.manifest["config"]["data"]["val_seeds"])
    scans = scan_scores_in_workers(args.manifest, seeds, args.workers)
    points = operating_points([scan for scan, _ in scans])
    card = {key: value for key, value in model.manifest.items() if key not in BUNDLE_FIELDS}
    card["remeasured"] = {"from_sha256": model.sha256, "previous_at_90": at_sensitivity(card["operating_points"], 0.9)}
    card["operating_points"] = points
    manifest = save_microbleed_model(model.network, model.input_size, args.out, card)
    print(f"at 90 %: {at_sensitivity(points, 0.9)} (was {card['remeasured']['previous_at_90']}); wrote {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
