"""ParameterEMA: shadows of the trained parameters only, diffusers' warmup, exact state round trip."""
import pytest
import torch
from torch import nn

from basicsr_vdd.models.ema import ParameterEMA


def _net():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    net[1].requires_grad_(False)
    with torch.no_grad():
        net[0].weight.fill_(0.0)
    return net


def test_warmup_decay_by_hand_and_only_trained_parameters():
    net = _net()
    ema = ParameterEMA(net, decay=0.999)
    assert set(ema.shadow) == {'0.weight', '0.bias'}
    expected = torch.zeros(2, 2)
    for n, value in enumerate([1.0, 2.0, 4.0], start=1):
        with torch.no_grad():
            net[0].weight.fill_(value)
        decay = (1 + n) / (10 + n)  # 2/11, 3/12, 4/13: far below 0.999
        assert ema.current_decay() == pytest.approx(decay)
        ema.update(net)
        expected = decay * expected + (1 - decay) * value
    torch.testing.assert_close(ema.shadow['0.weight'], expected)
    # the initial (zero) weights are forgotten: after 3 updates the average is mostly the last values
    assert expected[0, 0] > 2.5
    fixed = ParameterEMA(_net(), decay=0.999, warmup=False)
    assert fixed.current_decay() == 0.999
    many = ParameterEMA(net, decay=0.999)
    many.num_updates = 100000
    assert many.current_decay() == 0.999


def test_state_round_trip_continues_identically_and_old_states_keep_a_fixed_decay():
    net = _net()
    ema = ParameterEMA(net, decay=0.99)
    for _ in range(3):
        with torch.no_grad():
            net[0].weight.add_(1.0)
        ema.update(net)
    state = ema.state_dict()
    again = ParameterEMA(_net(), decay=0.5)
    again.load_state_dict(state)
    assert again.num_updates == 3 and again.current_decay() == ema.current_decay()
    ema.update(net)
    again.update(net)
    assert all(torch.equal(ema.shadow[k], again.shadow[k]) for k in ema.shadow)
    old = {'decay': 0.99, 'shadow': state['shadow']}  # saved before the warmup existed
    legacy = ParameterEMA(_net(), decay=0.5)
    legacy.load_state_dict(old)
    assert legacy.current_decay() == 0.99
    with pytest.raises(KeyError, match='lacks 1 trainable'):
        ParameterEMA(_net(), 0.9).load_state_dict({'decay': 0.9, 'shadow': {'0.weight': torch.zeros(2, 2)}})
