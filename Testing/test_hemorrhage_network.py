"""Hemorrhage network: the weighted log loss and the CNN → PCA → BiLSTM network (METHODS.md D)."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from sklearn.decomposition import PCA

from LesionDetectLib.detectors.hemorrhage.labels import LABELS, LOSS_WEIGHTS
from LesionDetectLib.nets.multilabel_loss import weighted_log_loss
from LesionDetectLib.nets.slice_sequence import SliceSequenceConfig, SliceSequenceNet, scan_probabilities

TINY = SliceSequenceConfig(width=0.125, blocks=(1, 1, 1, 1), reduced=8, lstm_hidden=16, dropout=0.0)


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def test_weighted_log_loss_counts_any_twice():
    logits = torch.zeros(4, 6)
    targets = torch.zeros(4, 6)
    targets[:, 0] = 1.0
    ln2 = float(np.log(2))
    assert weighted_log_loss(logits, targets, LOSS_WEIGHTS).item() == pytest.approx(ln2)
    wrong_any = torch.zeros(1, 6)
    wrong_any[0, 0] = 5.0  # confident "any" on a negative slice
    wrong_subtype = torch.zeros(1, 6)
    wrong_subtype[0, 1] = 5.0
    truth = torch.zeros(1, 6)
    excess_any = weighted_log_loss(wrong_any, truth, LOSS_WEIGHTS) - weighted_log_loss(
        torch.zeros(1, 6), truth, [1] * 6
    )
    excess_subtype = weighted_log_loss(wrong_subtype, truth, LOSS_WEIGHTS) - weighted_log_loss(
        torch.zeros(1, 6), truth, [1] * 6
    )
    assert excess_any.item() == pytest.approx(2 * excess_subtype.item(), rel=1e-5)


@pytest.mark.parametrize("slices", [1, 7, 30])
def test_network_gives_six_logits_per_slice_for_any_slice_count(slices):
    network = SliceSequenceNet(TINY).eval()
    logits, cnn_logits = network(torch.rand(2, slices, 3, 64, 64))
    assert logits.shape == cnn_logits.shape == (2, slices, len(LABELS))
    assert scan_probabilities(logits).shape == (2, len(LABELS))


def test_network_has_the_papers_sequence_model_at_default_size():
    network = SliceSequenceNet(SliceSequenceConfig())
    lstm = network.lstm
    assert (lstm.input_size, lstm.hidden_size, lstm.num_layers, lstm.bidirectional) == (120, 256, 3, True)
    assert lstm.dropout > 0
    assert network.head.in_features == 2 * 256 + 6  # the CNN's six probabilities join the LSTM's output


def test_the_lstm_reads_neighbouring_slices():
    network = SliceSequenceNet(TINY).eval()
    scan = torch.rand(1, 6, 3, 64, 64)
    changed = scan.clone()
    changed[0, 5] = 0.0
    with torch.no_grad():
        before, cnn_before = network(scan)
        after, cnn_after = network(changed)
    assert torch.equal(cnn_before[0, :5], cnn_after[0, :5])  # the CNN sees each slice alone
    assert not torch.allclose(before[0, 0], after[0, 0])  # the sequence model carries slice 5 to slice 0


def test_pca_reduction_is_saved_and_reloaded_identically(tmp_path):
    network = SliceSequenceNet(TINY).eval()
    with torch.no_grad():
        features, _ = network.cnn(torch.rand(40, 3, 64, 64))
    pca = PCA(n_components=TINY.reduced, random_state=0).fit(features.numpy())
    network.reduction.set_pca(torch.from_numpy(pca.mean_).float(), torch.from_numpy(pca.components_).float())
    np.testing.assert_allclose(network.reduction(features).numpy(), pca.transform(features.numpy()), atol=1e-4)
    save_file(network.state_dict(), str(tmp_path / "net.safetensors"))
    reloaded = SliceSequenceNet(TINY).eval()
    reloaded.load_state_dict(load_file(str(tmp_path / "net.safetensors")))
    scan = torch.rand(1, 4, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(network(scan)[0], reloaded(scan)[0])
    assert torch.equal(reloaded.reduction.components, network.reduction.components)


def test_pca_of_the_wrong_shape_is_refused():
    network = SliceSequenceNet(TINY)
    with pytest.raises(ValueError, match="does not fit"):
        network.reduction.set_pca(torch.zeros(5), torch.zeros(8, 5))


def test_a_tiny_network_overfits_a_tiny_batch():
    network = SliceSequenceNet(TINY)
    scans = torch.rand(2, 5, 3, 32, 32)
    targets = torch.zeros(2, 5, 6)
    scans[0, 1:3, :, 8:20, 8:20] += 2.0  # a bright blob on two slices: "any" and intraparenchymal there
    targets[0, 1:3, [0, 2]] = 1.0
    optimiser = torch.optim.Adam(network.parameters(), lr=3e-3)
    for _ in range(150):
        logits, cnn_logits = network(scans)
        loss = weighted_log_loss(logits, targets, LOSS_WEIGHTS) + weighted_log_loss(cnn_logits, targets, LOSS_WEIGHTS)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    network.eval()
    with torch.no_grad():
        probabilities = network(scans)[0].sigmoid()
    assert loss.item() < 0.05
    assert ((probabilities > 0.5) == (targets > 0.5)).all()


def test_a_mobilenet_v2_trunk_gives_1280_features_and_names_its_stride_16_stage_for_gradcam():
    network = SliceSequenceNet(SliceSequenceConfig(backbone="mobilenet_v2", reduced=8, lstm_hidden=16)).eval()
    assert network.cnn.features == 1280
    stage = network.get_submodule(f"cnn.{network.cnn.cam_layer}")
    seen = {}

    def keep_shape(module, inputs, output):
        seen["shape"] = output.shape

    stage.register_forward_hook(keep_shape)
    with torch.no_grad():
        logits, cnn_logits = network(torch.rand(1, 3, 3, 64, 64))
    assert logits.shape == cnn_logits.shape == (1, 3, 6) and seen["shape"][-2:] == (4, 4)  # 64 / 16
    assert not {"cnn.trunk.mean", "cnn.trunk.std"} & set(network.state_dict())  # constants, not weights


@pytest.mark.parametrize(
    "config", [SliceSequenceConfig(backbone="vgg"), SliceSequenceConfig(backbone="mobilenet_v2", in_channels=1)]
)
def test_an_unknown_backbone_or_a_channel_count_it_cannot_take_is_refused(config):
    with pytest.raises(ValueError, match="backbone|channels"):
        SliceSequenceNet(config)
