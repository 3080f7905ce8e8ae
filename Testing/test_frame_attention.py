"""The angiography frame classifier: MobileNetV2 feature map → MONAI self-attention → one logit (METHODS.md E)."""

import pytest
import torch

from LesionDetectLib.nets.frame_attention import FrameAttentionConfig, FrameAttentionNet


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def test_one_logit_per_frame_and_an_attention_map_that_weighs_the_cells():
    network = FrameAttentionNet(FrameAttentionConfig(dropout=0.0)).eval()
    with torch.no_grad():
        logits = network(torch.rand(3, 1, 128, 160))
    attention = network.attention_map()
    assert logits.shape == (3,) and attention.shape == (3, 4, 5)  # stride 32
    assert torch.allclose(attention.sum(dim=(1, 2)), torch.ones(3)) and (attention >= 0).all()
    assert network.get_submodule(network.cam_layer) is network.trunk.features[18]


def test_max_pooling_scores_every_cell_keeps_the_highest_and_maps_that_cells_attention():
    network = FrameAttentionNet(FrameAttentionConfig(dropout=0.0, pooling="max"))  # batch statistics: cells differ
    with torch.no_grad():
        logits = network(torch.rand(2, 1, 96, 128))
        tokens = network.cells.flatten(2).transpose(1, 2)
        per_cell = network.head(network.norm(tokens + network.attention(tokens)))[..., 0]
    assert torch.allclose(logits, per_cell.max(dim=1).values, atol=1e-5)
    attention = network.attention_map()
    assert attention.shape == (2, 3, 4) and torch.allclose(attention.sum(dim=(1, 2)), torch.ones(2))
    assert torch.equal(network.evidence_map(), network.cell_logits.sigmoid())  # where it scores, not where it looks
    winner_rows = network.attention.att_mat.mean(dim=1)[torch.arange(2), per_cell.argmax(dim=1)]
    assert torch.allclose(attention.flatten(1), winner_rows)
    mean_of_rows = network.attention.att_mat.mean(dim=(1, 2))
    assert not torch.allclose(attention.flatten(1), mean_of_rows)  # not the mean pooling's map
    shapes = []
    network.get_submodule(network.cam_layer).register_forward_hook(lambda *args: shapes.append(args[2].shape))
    with torch.no_grad():
        network(torch.rand(2, 1, 96, 128))
    assert shapes[0][-2:] == (6, 8)  # Grad-CAM on the stride-16 block: finer than the stride-32 cells
    with pytest.raises(ValueError, match="pooling 'sum'"):
        FrameAttentionNet(FrameAttentionConfig(pooling="sum"))


def test_without_the_attention_module_the_same_cnn_has_no_attention_weights_and_no_map():
    plain = FrameAttentionNet(FrameAttentionConfig(attention=False))
    with_attention = FrameAttentionNet(FrameAttentionConfig())
    extra = set(with_attention.state_dict()) - set(plain.state_dict())
    assert extra and all(name.startswith(("attention.", "norm.")) for name in extra)
    assert set(plain.state_dict()) < set(with_attention.state_dict())
    with torch.no_grad():
        assert plain(torch.rand(2, 1, 64, 64)).shape == (2,)
    with pytest.raises(RuntimeError, match="no attention"):
        plain.attention_map()


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_a_tiny_network_overfits_a_tiny_batch(pooling):
    network = FrameAttentionNet(FrameAttentionConfig(dropout=0.0, attention_dim=32, heads=2, pooling=pooling))
    frames = torch.rand(6, 1, 64, 64)
    frames[:3, :, 20:44, 30:34] = 0.0  # a dark "vessel" on the abnormal frames
    labels = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-3)
    loss_function = torch.nn.BCEWithLogitsLoss()
    network.train()
    for _ in range(40):
        loss = loss_function(network(frames), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():  # batch statistics of these six frames, as in training (dropout is off)
        probabilities = network(frames).sigmoid()
    assert loss.item() < 0.05 and ((probabilities > 0.5).float() == labels).all()
