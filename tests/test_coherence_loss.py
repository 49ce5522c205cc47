"""The temporal coherence loss against numbers worked out by hand."""
import pytest
import torch

import basicsr_vdd  # noqa: F401  (registers the loss)
from basicsr.losses import build_loss


def _video(frames):
    """[1, 1, F, 1, 1] from a list of per-frame values."""
    return torch.tensor(frames, dtype=torch.float32).view(1, 1, -1, 1, 1)


def test_hand_computed_value():
    loss = build_loss({'type': 'TemporalCoherenceLoss', 'loss_weight': 1.0, 'reduction': 'sum'})
    target, pred = _video([0.0, 1.0, 3.0]), _video([0.0, 2.0, 2.0])
    # target differences (1, 2), prediction differences (2, 0): (1-2)^2 + (2-0)^2 = 5
    assert loss(pred, target).item() == pytest.approx(5.0)
    mean = build_loss({'type': 'TemporalCoherenceLoss', 'loss_weight': 0.1})
    assert mean(pred, target).item() == pytest.approx(0.1 * 5.0 / 2)


def test_zero_when_prediction_is_offset_by_a_constant_in_time():
    loss = build_loss({'type': 'TemporalCoherenceLoss', 'loss_weight': 0.1})
    target = torch.randn(2, 4, 5, 3, 3)
    offset = torch.randn(2, 4, 1, 3, 3)  # differs per pixel, constant over frames
    assert loss(target + offset, target).item() == pytest.approx(0.0, abs=1e-12)
    assert loss(target + torch.randn_like(target), target).item() > 0


def test_weight_scales_and_bad_shapes_raise():
    pred, target = torch.randn(1, 2, 4, 2, 2), torch.randn(1, 2, 4, 2, 2)
    a = build_loss({'type': 'TemporalCoherenceLoss', 'loss_weight': 1.0})(pred, target)
    b = build_loss({'type': 'TemporalCoherenceLoss', 'loss_weight': 0.1})(pred, target)
    assert b.item() == pytest.approx(0.1 * a.item())
    with pytest.raises(ValueError, match='F>=2'):
        build_loss({'type': 'TemporalCoherenceLoss'})(torch.randn(1, 2, 1, 2, 2), torch.randn(1, 2, 1, 2, 2))
    with pytest.raises(ValueError, match='reduction'):
        build_loss({'type': 'TemporalCoherenceLoss', 'reduction': 'none'})
