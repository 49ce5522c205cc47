"""The compatibility layer for BasicSR 1.4.2 on current torch/torchvision and CPU."""
import torch

import basicsr_vdd  # noqa: F401  (applies compat)


def test_basicsr_imports_and_registers_our_components():
    import torchvision.transforms.functional as functional
    import torchvision.transforms.functional_tensor as shim  # removed in torchvision 0.17; BasicSR imports it

    assert shim.rgb_to_grayscale is functional.rgb_to_grayscale
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY
    assert {'VDDNet', 'STFAN', 'SRNDeblurNet', 'EDVR'} <= set(ARCH_REGISTRY._obj_map)
    assert {'PairedVideoDataset', 'PairedVideoTestDataset'} <= set(DATASET_REGISTRY._obj_map)
    assert 'TemporalCoherenceLoss' in LOSS_REGISTRY._obj_map and 'calculate_lpips' in METRIC_REGISTRY._obj_map
    assert 'calculate_stlpips' in METRIC_REGISTRY._obj_map
    assert {'VDDModel', 'STFANModel', 'SRNModel'} <= set(MODEL_REGISTRY._obj_map)


def test_any_torch_optimizer_by_name():
    from basicsr.models.base_model import BaseModel

    params = [torch.nn.Parameter(torch.zeros(2))]
    opt = BaseModel.get_optimizer(None, 'AdamW', params, 1e-3, betas=(0.9, 0.999), weight_decay=0.01)
    assert isinstance(opt, torch.optim.AdamW) and opt.defaults['weight_decay'] == 0.01
    try:
        BaseModel.get_optimizer(None, 'NotAnOptimizer', params, 1e-3)
    except NotImplementedError as err:
        assert 'NotAnOptimizer' in str(err)
    else:
        raise AssertionError('an unknown optimizer must be refused')


def test_perceptual_loss_l2_criterion_is_mse(monkeypatch):
    import basicsr.losses.basic_loss as basic_loss

    class FakeVGG(torch.nn.Module):  # BasicSR would download VGG19 weights; only the criterion matters here
        def __init__(self, layer_name_list, **kwargs):
            super().__init__()

        def forward(self, x):
            return {'conv1_2': x}

    monkeypatch.setattr(basic_loss, 'VGGFeatureExtractor', FakeVGG)
    loss = basic_loss.PerceptualLoss({'conv1_2': 1.0}, perceptual_weight=1.0, style_weight=0.0, criterion='l2')
    a, b = torch.zeros(1, 3, 4, 4), torch.full((1, 3, 4, 4), 2.0)
    percep, style = loss(a, b)
    assert isinstance(loss.criterion, torch.nn.MSELoss) and percep.item() == 4.0 and style is None


def test_mid_epoch_resume_skips_the_samples_of_the_loader_batches_seen(monkeypatch):
    """The resumed epoch skips ``done`` batches of the loader's own size (DataParallel: batch_size_per_gpu
    x num_gpu), not ``done x batch_size_per_gpu`` samples."""
    import logging
    from basicsr_vdd import compat
    from basicsr_vdd.data.resumable_sampler import ResumableSampler

    dataset = list(range(24))
    sampler = ResumableSampler(dataset, num_replicas=1, rank=0)
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, sampler=sampler)  # 2 per GPU x 2 GPUs
    opt = {'manual_seed': 0, 'datasets': {'train': {'batch_size_per_gpu': 2}}}
    compat._RESUMED[id(opt)] = (0, 2)  # resumed at iteration 2: two batches of this epoch done
    _, resumed, *_ = compat.create_train_val_dataloader(opt, logging.getLogger('t'),
                                                        _original=lambda o, lg: (loader, sampler, None, 1, 1))
    assert resumed.start == 8 and len(list(resumed)) == 24 - 8
