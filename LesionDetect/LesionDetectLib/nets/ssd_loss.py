"""SSD training loss: L = (L_conf + a * L_loc) / N over N matched default boxes.

L_conf is softmax cross-entropy over the matched boxes and the hardest negatives (3 per positive, SSD's mining;
at least `min_negatives` per image, so that an image without lesions teaches more than a handful of boxes);
L_loc is the general robust loss (Barron 2019) of the encoded box-regression errors, as in METHODS.md A.
Boxes are (d0_min, d1_min, d0_max, d1_max) in pixels.
"""

import torch
import torch.nn.functional as F
from monai.apps.detection.utils.ATSS_matcher import ATSSMatcher
from monai.apps.detection.utils.hard_negative_sampler import HardNegativeSampler
from torch import Tensor

from LesionDetectLib.nets.robust_loss import robust_loss
from LesionDetectLib.nets.ssd import BOX_CODER, anchor_layout

# ATSS instead of SSD's IoU >= 0.5: a 3-px lesion in a 64-px crop overlaps even the smallest (9.6 px) default box
# with IoU < 0.1, so plain IoU matching leaves it one forced anchor and makes its equally good neighbours negatives.
# ATSS's adaptive per-object IoU threshold (mean + std over the nearest boxes of each map) keeps those as positives;
# centres need not lie inside tiny boxes.
MATCHER = ATSSMatcher(num_candidates=4, center_in_gt=False)


def match_anchors(anchors: Tensor, boxes: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Per default box: class label (0 = background) [A] and encoded regression target [A, 4] (0 if background).

    ATSS matching, plus SSD's rule that each ground truth keeps its best-overlapping default box.
    """
    locations_per_level, per_location = anchor_layout(anchors)
    iou, matches = MATCHER(boxes, anchors, locations_per_level, per_location)
    matches = matches.to(anchors.device)  # MONAI builds the no-ground-truth answer on the CPU
    if len(boxes):
        matches[iou.argmax(dim=1)] = torch.arange(len(boxes), device=anchors.device)
    positive = matches >= 0
    anchor_labels = torch.zeros(len(anchors), dtype=torch.int64, device=anchors.device)
    anchor_labels[positive] = labels[matches[positive]].to(torch.int64)
    targets = torch.zeros_like(anchors)
    if positive.any():
        targets[positive] = BOX_CODER.encode_single(boxes[matches[positive]].to(anchors), anchors[positive])
    return anchor_labels, targets


def ssd_loss(
    class_logits: Tensor,
    box_deltas: Tensor,
    anchors: Tensor,
    targets: list[dict],
    alpha: float = 1.12,
    beta: float = 0.05,
    loc_weight: float = 1.0,
    negative_ratio: int = 3,
    min_negatives: int = 1,
) -> dict:
    """dict(loss, conf, loc, matched) for a batch; targets[i] = dict(boxes [n, 4], labels [n] >= 1), n may be 0.

    Hard negatives: MONAI's HardNegativeSampler with pool 1 keeps, per crop, the negative_ratio * P negatives of
    highest foreground probability: at least max(negative_ratio, min_negatives), so crops without lesions still
    teach background (min_negatives is the sampler's min_neg; MONAI's RetinaNet detector uses 16).
    N = matched boxes in the batch (at least 1); conf and loc are returned divided by N as well.
    """
    matched = [match_anchors(anchors, t["boxes"], t["labels"]) for t in targets]
    labels = torch.stack([m[0] for m in matched])
    box_targets = torch.stack([m[1] for m in matched])
    positive = labels > 0

    pool = len(anchors) * (1 + negative_ratio)
    sampler = HardNegativeSampler(pool, 1 / (1 + negative_ratio), pool_size=1, min_neg=min_negatives)
    foreground = class_logits.detach().softmax(dim=-1)[..., 1:].amax(dim=-1)
    positives, negatives = sampler.select_samples_img_list(list(labels), list(foreground))
    selected = torch.stack(positives).bool() | torch.stack(negatives).bool()

    num_matched = positive.sum()
    normaliser = num_matched.clamp(min=1)
    conf = F.cross_entropy(class_logits[selected], labels[selected], reduction="sum") / normaliser
    loc = robust_loss(box_deltas[positive] - box_targets[positive], alpha, beta).sum() / normaliser
    return {"loss": conf + loc_weight * loc, "conf": conf, "loc": loc, "matched": num_matched}
