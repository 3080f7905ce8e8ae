"""Feature enhancement (METHODS.md C): the mask on hand-checked numbers, resizing, X + M * X, no state, inference."""

import pytest
import torch
from torch import nn

from LesionDetectLib.nets.feature_enhancement import FeatureEnhancement, enhanced, enhancement_mask, resized_mask

# A 4x4 image with one 2x2 box (rows 1-2, cols 1-2) holding 2, 4, 6, 8: mean 5, B_mean = 1.5 * 5 = 7.5.
IMAGE = torch.tensor([[9.0, 9, 9, 9], [9, 2, 4, 9], [9, 6, 8, 9], [9, 9, 9, 9]])[None, None]
BOX = torch.tensor([[1.0, 1, 3, 3]])
# 1 - 2/7.5 = 11/15, 1 - 4/7.5 = 7/15, 1 - 6/7.5 = 3/15; 8 > 7.5 is dropped; 0 outside the box.
EXPECTED_MASK = torch.tensor([[0, 0, 0, 0], [0, 11 / 15, 7 / 15, 0], [0, 3 / 15, 0, 0], [0, 0, 0, 0]])
# Area-averaged onto 2x2: each cell holds one box pixel and three zeros.
EXPECTED_2X2 = torch.tensor([[11 / 60, 7 / 60], [3 / 60, 0]])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_mask_on_hand_checked_box():
    mask = enhancement_mask(IMAGE, [BOX])
    assert mask.shape == (1, 1, 4, 4)
    torch.testing.assert_close(mask[0, 0], EXPECTED_MASK)


def test_mask_reads_other_box_modes_and_the_channel_mean():
    as_xywh = torch.tensor([[1.0, 1, 2, 2]])
    torch.testing.assert_close(enhancement_mask(IMAGE, [as_xywh], box_mode="xywh")[0, 0], EXPECTED_MASK)
    three_channels = torch.cat([IMAGE - 1, IMAGE, IMAGE + 1], dim=1)  # channel mean = IMAGE
    torch.testing.assert_close(enhancement_mask(three_channels, [BOX])[0, 0], EXPECTED_MASK)


def test_overlapping_boxes_keep_the_larger_weight():
    image = torch.tensor([[1.0, 2, 3]])[None, None]
    left, right = torch.tensor([0.0, 0, 1, 2]), torch.tensor([0.0, 1, 1, 3])
    # left: mean 1.5, B_mean 2.25: 1 - 1/2.25 = 5/9, 1 - 2/2.25 = 1/9; right: mean 2.5, B_mean 3.75: 7/15, 3/15.
    mask = enhancement_mask(image, [torch.stack([left, right])])[0, 0, 0]
    torch.testing.assert_close(mask, torch.tensor([5 / 9, 7 / 15, 3 / 15]))
    torch.testing.assert_close(enhancement_mask(image, [torch.stack([right, left])])[0, 0, 0], mask)


def test_boxes_without_positive_mean_and_images_without_boxes_are_not_enhanced():
    image = torch.tensor([[0.0, 0, -1, -3], [0, 0, -2, 1]])[None, None]
    zero_box, negative_box = [0.0, 0, 2, 2], [0.0, 2, 2, 4]  # B_mean 0 and 1.5 * (-5/4)
    assert not enhancement_mask(image, [torch.tensor([zero_box, negative_box])]).any()
    assert not enhancement_mask(IMAGE.repeat(2, 1, 1, 1), [BOX, torch.zeros(0, 4)])[1].any()


def test_negative_pixels_in_a_box_are_capped_at_one():
    image = torch.tensor([[-1.0, 3, 4]])[None, None]  # mean 2, B_mean 3: 1 - (-1)/3 = 4/3 -> 1, 0, dropped
    mask = enhancement_mask(image, [torch.tensor([[0.0, 0, 1, 3]])])
    torch.testing.assert_close(mask[0, 0, 0], torch.tensor([1.0, 0, 0]))


def test_mask_resized_to_the_feature_map_and_added_on_every_channel():
    small = resized_mask(enhancement_mask(IMAGE, [BOX]), (2, 2))
    torch.testing.assert_close(small[0, 0], EXPECTED_2X2)
    features = torch.arange(1.0, 9.0).view(1, 2, 2, 2).requires_grad_()
    out = enhanced(features, small)
    torch.testing.assert_close(out, features * (1 + EXPECTED_2X2))
    out.sum().backward()
    torch.testing.assert_close(features.grad, (1 + EXPECTED_2X2).expand(1, 2, 2, 2))


def test_module_enhances_in_training_only_and_holds_no_state():
    layer = FeatureEnhancement()
    assert list(layer.parameters()) == [] and layer.state_dict() == {}
    features = torch.ones(1, 3, 2, 2)
    torch.testing.assert_close(layer(features, IMAGE, [BOX]), (1 + EXPECTED_2X2).expand(1, 3, 2, 2))
    assert layer.eval()(features, IMAGE, [BOX]) is features


class TinyDetector(nn.Module):
    """Two convs with the FE layer (when given) on the stride-2 map between them, as the SSD uses it at conv4_3."""

    def __init__(self, feature_enhancement: FeatureEnhancement | None = None) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.feature_enhancement = feature_enhancement
        self.head = nn.Conv2d(4, 2, 3, padding=1)

    def forward(self, images: torch.Tensor, boxes: list[torch.Tensor] | None = None) -> torch.Tensor:
        features = torch.relu(self.stem(images))
        if self.feature_enhancement is not None and boxes is not None:
            features = self.feature_enhancement(features, images, boxes)
        return self.head(features)


def test_network_with_and_without_the_layer_is_the_same_network_at_inference():
    torch.manual_seed(0)
    trained = TinyDetector(FeatureEnhancement())
    exported = TinyDetector()
    assert trained.state_dict().keys() == exported.state_dict().keys()
    exported.load_state_dict(trained.state_dict(), strict=True)
    images, boxes = torch.rand(2, 1, 16, 16), [torch.tensor([[4.0, 4, 9, 8]]), torch.tensor([[0.0, 10, 6, 16]])]
    with torch.no_grad():
        assert torch.equal(trained.eval()(images, boxes), exported.eval()(images))
        assert not torch.equal(trained.train()(images, boxes), exported.train()(images))
