"""Every option file in options/ parses and names only registered components (paper and demo configs alike)."""
import glob
import os.path as osp

import pytest
import yaml

import basicsr_vdd  # noqa: F401  (registration)
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY
from conftest import REPO

METHODS_FILE = osp.join(REPO, 'options', 'demo', 'methods.yml')
OPTION_FILES = sorted(p for p in glob.glob(osp.join(REPO, 'options', '**', '*.yml'), recursive=True)
                      if p != METHODS_FILE)


def test_there_are_option_files():
    names = {osp.relpath(p, REPO) for p in OPTION_FILES}
    assert {'options/demo/train_edvr_synth.yml', 'options/baselines/train_edvr_gopro.yml',
            'options/baselines/test_edvr_dvd.yml'} <= names


@pytest.mark.parametrize('path', OPTION_FILES, ids=lambda p: osp.relpath(p, REPO))
def test_option_file_names_registered_components(path):
    with open(path) as f:
        opt = yaml.safe_load(f)
    assert opt['model_type'] in MODEL_REGISTRY, opt['model_type']
    assert opt['network_g']['type'] in ARCH_REGISTRY, opt['network_g']['type']
    for phase, dataset in opt['datasets'].items():
        assert phase in ('train', 'test') or phase.startswith(('val', 'test_')), phase
        assert dataset['type'] in DATASET_REGISTRY, dataset['type']
    for key, loss in opt.get('train', {}).items():
        if key.endswith('_opt') and loss:
            assert loss['type'] in LOSS_REGISTRY, loss['type']
    for metric in (opt.get('val') or {}).get('metrics', {}).values():
        assert metric['type'] in METRIC_REGISTRY, metric['type']


def test_demo_methods_name_existing_train_and_test_files():
    with open(METHODS_FILE) as f:
        methods = yaml.safe_load(f)
    assert set(methods) == {'EDVR', 'STFAN', 'SRN', 'VDD', 'VDD-sampled', 'NAFNet', 'PVDNet'}
    for spec in methods.values():
        for path in spec['train'] + [spec['test']]:
            assert osp.join(REPO, path) in OPTION_FILES, path


@pytest.mark.parametrize('path', OPTION_FILES, ids=lambda p: osp.relpath(p, REPO))
def test_option_file_passes_the_name_and_number_checks_of_train_and_test(path):
    from basicsr_vdd import option_checks
    option_checks.use_yaml_floats()
    opt = option_checks.read_options(path)  # as BasicSR reads it
    option_checks.check_name(opt['name'])
    option_checks.check_numbers(opt)
    option_checks.check_metrics(opt)
    if osp.basename(path).startswith('test'):
        assert (opt['path'].get('pretrain_network_g') or opt.get('allow_random_init')), 'a test needs a checkpoint'
