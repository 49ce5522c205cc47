"""The committed demo checkpoints load strictly into the networks their test option files build."""
import os.path as osp

import pytest
import torch

import basicsr_vdd  # noqa: F401
from basicsr.archs import build_network
from vdd_demo import runner
from basicsr_vdd.pipelines.inference import load_vdd

METHODS = runner.methods()


@pytest.mark.parametrize('name', list(METHODS))
def test_committed_demo_checkpoint_matches_its_test_options(name):
    option = METHODS[name]['test']
    path = runner.checkpoint_of(option)
    assert osp.isfile(path), f'{name}: {path} is not committed'
    opt = runner.repo_options(option)
    if opt['model_type'] == 'VDDModel':  # a stage checkpoint: the parts it lists
        net, diffusion, _ = load_vdd(osp.join(runner.ROOT, option))  # raises on missing/unexpected keys
        assert diffusion.target == 'residual' and diffusion.residual_scale > 0
        return
    net = build_network(opt['network_g'])
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    net.load_state_dict(ckpt[opt['path'].get('param_key_g', 'params')], strict=True)
