"""make demo's test runner: option files tested two at a time, one log each, a failure named with its log."""
import glob
import os.path as osp
import shutil
import subprocess
import uuid

import pytest
import torch

import basicsr_vdd  # noqa: F401  (compat layer before basicsr)
from basicsr.archs.edvr_arch import EDVR
from vdd_demo import runner
from conftest import REPO, edvr_test_options, write_options


@pytest.mark.slow
def test_parallel_tests_write_one_log_each_and_a_failure_names_its_log(tiny_gopro, tmp_path):
    opt = edvr_test_options(tiny_gopro, tmp_path / 'edvr.pth')
    torch.save({'params': EDVR(**{k: v for k, v in opt['network_g'].items() if k != 'type'}).state_dict()},
               tmp_path / 'edvr.pth')
    opt['name'] = f'pytest_parallel_{uuid.uuid4().hex[:8]}'
    good = write_options(opt, tmp_path / 'good.yml')
    logs = tmp_path / 'logs'
    try:
        with pytest.raises(subprocess.CalledProcessError) as err:
            runner.run_tests_in_parallel([(good, []), (str(tmp_path / 'absent.yml'), [])], str(logs))
        assert str(logs / 'absent.log') in err.value.output
        assert 'absent.yml: no such option file' in (logs / 'absent.log').read_text()
        assert 'Validation SynthGoPro_test (2 videos, 11 frames' in (logs / 'good.log').read_text()
        assert glob.glob(osp.join(REPO, 'results', opt['name'], 'metrics_*.json'))  # the good one still ran
    finally:
        shutil.rmtree(osp.join(REPO, 'results', opt['name']), ignore_errors=True)
