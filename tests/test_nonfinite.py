"""A NaN/inf loss skips the step (no parameter or EMA change), is counted, and N in a row stop training."""
import copy

import pytest
import torch

import basicsr_vdd  # noqa: F401
from basicsr_vdd.models.nonfinite_guard import NonFiniteTrainingError, make_guarded
from basicsr_vdd.models.vdd_model import VDDModel
from conftest import batch, changed, params_by_part, tiny_options


def nan_batch(seed):
    data = batch(seed)
    data['gt'][0, 0, 0, 0, 0] = float('nan')
    return data


def test_vdd_skips_nonfinite_steps_and_stops_after_the_limit(tmp_path):
    torch.manual_seed(0)
    model = VDDModel(tiny_options(2, tmp_path, ema_decay=0.9, max_nonfinite_steps=3))
    model.feed_data(batch(0))
    model.optimize_parameters(1)  # a good first step (it also fixes the residual scale)
    before, ema_before = params_by_part(model), copy.deepcopy(model.ema.state_dict())

    for it in (2, 3):
        model.feed_data(nan_batch(it))
        model.optimize_parameters(it)
        assert not torch.isfinite(model.log_dict['l_total'] if torch.is_tensor(model.log_dict['l_total'])
                                  else torch.tensor(model.log_dict['l_total']))
    assert changed(before, params_by_part(model)) == set()
    assert all(torch.equal(v, ema_before['shadow'][k]) for k, v in model.ema.state_dict()['shadow'].items())
    assert model.optimizer_g.nonfinite_in_row == 2 and model.optimizer_g.nonfinite_total == 2

    model.feed_data(batch(4))  # a good step resets the run of bad ones and trains again
    model.optimize_parameters(4)
    assert changed(before, params_by_part(model)) == {'blur_encoder', 'unet', 'image_proj'}
    assert model.optimizer_g.nonfinite_in_row == 0 and model.optimizer_g.nonfinite_total == 2

    for it in (5, 6):
        model.feed_data(nan_batch(it))
        model.optimize_parameters(it)
    model.feed_data(nan_batch(7))
    with pytest.raises(NonFiniteTrainingError, match=r'3 consecutive steps .*max_nonfinite_steps = 3'):
        model.optimize_parameters(7)
    assert all(torch.isfinite(p).all() for p in model.bare.parameters())


def test_guarded_optimizer_works_with_basicsr_schedulers_and_names_the_iteration(caplog):
    from basicsr.models.lr_scheduler import CosineAnnealingRestartLR

    param = torch.nn.Parameter(torch.ones(3))
    optimizer = make_guarded(torch.optim.AdamW, [param], 0.1, max_nonfinite_steps=2)
    scheduler = CosineAnnealingRestartLR(optimizer, periods=[10])
    assert isinstance(optimizer, torch.optim.AdamW)
    optimizer.current_iter = 12
    param.grad = torch.tensor([1.0, float('inf'), 0.0])
    optimizer.step()
    scheduler.step()
    assert torch.equal(param.data, torch.ones(3)) and param.grad is None
    assert 'Non-finite loss or gradients at iteration 12: step skipped (1 in a row' in caplog.text
    param.grad = torch.ones(3)
    optimizer.step()
    assert (param.data < 1).all() and optimizer.nonfinite_in_row == 0
    with pytest.raises(ValueError, match='max_nonfinite_steps must be >= 1'):
        make_guarded(torch.optim.AdamW, [param], 0.1, max_nonfinite_steps=0)
