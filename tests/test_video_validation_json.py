"""The metrics file video validation writes is strict JSON: a metric that is NaN (or inf) is ``null``,
and the demo's tables read it back."""
import glob
import json
import math
from types import SimpleNamespace

import pytest
import torch

import basicsr_vdd  # noqa: F401  (compat shim before the first basicsr import)
from basicsr_vdd.models.video_validation import _log_summary, finite_or_none, summarize_video_metrics
from vdd_demo.report import markdown_table


def _strict_load(path):
    def refuse(constant):
        raise ValueError(f'{path}: {constant} is not JSON')
    with open(path) as f:
        return json.loads(f.read(), parse_constant=refuse)


def test_nan_metrics_are_written_as_null(tmp_path):
    # video a: PSNR 30 and NaN (a failed frame); video b: PSNR inf (identical frames); SSIM fine
    results = {'a': torch.tensor([[30.0, 0.9], [math.nan, 0.8]], dtype=torch.float64),
               'b': torch.tensor([[math.inf, 1.0]], dtype=torch.float64)}
    counts = {'a': torch.ones(2, dtype=torch.float64), 'b': torch.ones(1, dtype=torch.float64)}
    summary = summarize_video_metrics(results, counts, ['psnr', 'ssim'], {})
    summary.update(dataset='tiny', iter=3, model='Net', parameters=10, seconds_per_frame=math.nan, frames=3, videos=2)
    model = SimpleNamespace(opt={'path': {'log': str(tmp_path)}})
    _log_summary(model, summary, None, 3)

    (path,) = glob.glob(str(tmp_path / 'metrics_tiny_3.json'))
    written = _strict_load(path)  # raises on a bare NaN / Infinity
    psnr, ssim = written['metrics']['psnr'], written['metrics']['ssim']
    assert psnr['per_video'] == {'a': None, 'b': None} and psnr['per_video_mean'] is None
    assert written['seconds_per_frame'] is None
    assert ssim['per_video'] == pytest.approx({'a': 0.85, 'b': 1.0}) and ssim['all_frame_mean'] == pytest.approx(0.9)
    table = markdown_table([('net', written)])
    assert '| net | nan | nan | 0.9250 | 0.9000 |' in table


def test_finite_or_none_keeps_everything_else():
    value = {'x': [1.0, math.nan, (2, -math.inf)], 'y': 'text', 'z': None, 'n': 3}
    assert finite_or_none(value) == {'x': [1.0, None, [2, None]], 'y': 'text', 'z': None, 'n': 3}
