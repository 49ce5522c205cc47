"""Result tables: read the metric summaries written by validation, score the blurry input the same way.

A summary is the dict that :func:`basicsr_vdd.models.video_validation.video_validation` writes to
``metrics_<dataset>_<iter>.json``: ``{'metrics': {name: {'per_video_mean', 'all_frame_mean',
'per_video'} | {'unavailable': reason}}, 'seconds_per_frame', 'frames', 'videos', ...}``.
"""
import glob
import json
import os.path as osp

import torch

import basicsr_vdd  # noqa: F401  (BasicSR's compatibility shim and registries before the first basicsr import)
from basicsr.metrics import calculate_metric
from basicsr.utils import tensor2img

from basicsr_vdd.metrics.lpips_metric import MetricUnavailableError
from basicsr_vdd.models.video_validation import summarize_video_metrics

DEFAULT_METRICS = {
    'psnr': {'type': 'calculate_psnr', 'crop_border': 0, 'test_y_channel': False},
    'ssim': {'type': 'calculate_ssim', 'crop_border': 0, 'test_y_channel': False},
    'stlpips': {'type': 'calculate_stlpips', 'net': 'alex'},
    'lpips': {'type': 'calculate_lpips'},
}


def load_summary(path):
    with open(path) as f:
        return json.load(f)


def latest_summary(folder, dataset_name=None):
    """The newest ``metrics_*.json`` in a result/experiment folder (by modification time)."""
    pattern = f'metrics_{dataset_name}_*.json' if dataset_name else 'metrics_*.json'
    paths = sorted(glob.glob(osp.join(folder, pattern)), key=osp.getmtime)
    if not paths:
        raise FileNotFoundError(f'no {pattern} in {folder}: run the test first')
    return load_summary(paths[-1])


def input_summary(dataroot, lq_folder='blur', gt_folder='sharp', metrics=None, videos=None, max_frames=None,
                  transform=None):
    """Score the blurry input against the ground truth exactly as model outputs are scored.

    Frames go through the same tensor -> uint8 conversion (``tensor2img``) and BasicSR metric
    functions as in validation; returns a summary dict (see module docstring). ``transform``
    (optional) maps each blurry frame, uint8 BGR ``[H, W, 3]``, to the uint8 BGR frame scored
    instead: a classical reference such as ``research/unsharp_reference.py``'s sharpening.
    """
    from basicsr_vdd.data.paired_video_dataset import PairedVideoTestDataset

    metrics = DEFAULT_METRICS if metrics is None else metrics
    dataset = PairedVideoTestDataset({
        'name': 'input', 'dataroot': dataroot, 'lq_folder': lq_folder, 'gt_folder': gt_folder, 'mode': 'video',
        'videos': videos, 'max_frames': max_frames, 'phase': 'test'})
    names = list(metrics)
    results, counts, unavailable = {}, {}, {}
    for folder, n in _frames_per_folder(dataset).items():
        results[folder] = torch.zeros(n, len(names), dtype=torch.float64)
        counts[folder] = torch.zeros(n, dtype=torch.float64)
    for i in range(len(dataset)):
        sample = dataset[i]
        folder = sample['folder']
        for k, frame_idx in enumerate(sample['frame_idx']):
            img = tensor2img([sample['lq'][k]])
            data = {'img': img if transform is None else transform(img), 'img2': tensor2img([sample['gt'][k]])}
            counts[folder][frame_idx] += 1
            for m, name in enumerate(names):
                if name in unavailable:
                    continue
                try:
                    results[folder][frame_idx, m] += calculate_metric(data, metrics[name])
                except MetricUnavailableError as err:
                    unavailable[name] = str(err)
    summary = summarize_video_metrics(results, counts, names, unavailable)
    summary.update(frames=int(sum(c.sum().item() for c in counts.values())), videos=len(results),
                   seconds_per_frame=0.0)
    return summary


def method_rows(dataroot, methods, lq_folder='blur', gt_folder='sharp'):
    """Table rows for ``methods`` ``[(label, summary, max_frames or None)]``, after the blurry input's.

    A method tested on the first ``max_frames`` frames of each video (a slow sampler) is labelled so,
    and the blurry input scored on exactly those frames comes right before it.
    """
    rows, subsets = [('blurry input', input_summary(dataroot, lq_folder, gt_folder))], {}
    for label, summary, max_frames in methods:
        if max_frames:
            if max_frames not in subsets:
                subsets[max_frames] = input_summary(dataroot, lq_folder, gt_folder, max_frames=max_frames)
            rows.append((f'blurry input, first {max_frames} frames', subsets[max_frames]))
            label = f'{label}, first {max_frames} frames'
        rows.append((label, summary))
    return rows


def _frames_per_folder(dataset):
    out = {}
    for folder in dataset.data_info['folder']:
        out[folder] = out.get(folder, 0) + 1
    return out


def _cell(summary, name, key, fmt):
    values = summary['metrics'].get(name)
    if values is None:
        return '—'
    if 'unavailable' in values:
        return 'n/a'
    return 'nan' if values[key] is None else fmt.format(values[key])  # null in the JSON: not a finite number


def markdown_table(rows):
    """``rows``: list of (method, summary). Both averaging conventions are shown side by side.
    ST-LPIPS (shift-tolerant, AlexNet) is not comparable to published LPIPS numbers; LPIPS is the
    real AlexNet LPIPS when its ImageNet file is present, n/a otherwise."""
    header = ('| method | PSNR (videos) | PSNR (frames) | SSIM (videos) | SSIM (frames) | ST-LPIPS (videos) '
              '| ST-LPIPS (frames) | LPIPS (videos) | LPIPS (frames) | parameters | s/frame |')
    lines = [header, '|' + '---|' * 11]
    for method, summary in rows:
        spf, params = summary.get('seconds_per_frame'), summary.get('parameters')
        lines.append('| ' + ' | '.join([
            method,
            _cell(summary, 'psnr', 'per_video_mean', '{:.2f}'), _cell(summary, 'psnr', 'all_frame_mean', '{:.2f}'),
            _cell(summary, 'ssim', 'per_video_mean', '{:.4f}'), _cell(summary, 'ssim', 'all_frame_mean', '{:.4f}'),
            _cell(summary, 'stlpips', 'per_video_mean', '{:.4f}'),
            _cell(summary, 'stlpips', 'all_frame_mean', '{:.4f}'),
            _cell(summary, 'lpips', 'per_video_mean', '{:.4f}'), _cell(summary, 'lpips', 'all_frame_mean', '{:.4f}'),
            '—' if not params else f'{params / 1e6:.2f} M',
            '—' if not spf else f'{spf:.3f}',
        ]) + ' |')
    notes = sorted({v['unavailable'] for _, s in rows for v in s['metrics'].values() if 'unavailable' in v})
    return '\n'.join(lines + [''] + [f'n/a: {n}' for n in notes])


# Published RGB numbers (design notes, section 5): name the source of each.
PUBLISHED = [
    # method, dataset, PSNR, SSIM, LPIPS, source
    ('STFAN', 'GoPro', 28.59, 0.86, 0.20, 'VDD paper, Table 1'),
    ('SRN', 'GoPro', 30.61, 0.90, 0.16, 'VDD paper, Table 1'),
    ('EDVR', 'GoPro', 31.54, 0.93, 0.10, 'VDD paper, Table 1'),
    ('PVDNet', 'GoPro', 31.52, 0.92, 0.12, 'VDD paper, Table 1'),
    ('Deblur-NeRF', 'GoPro', 31.89, 0.93, 0.10, 'VDD paper, Table 1'),
    ('VDD', 'GoPro', 32.22, 0.95, 0.07, 'VDD paper, Table 1'),
    ('STFAN', 'DVD', 31.24, 0.92, 0.11, 'VDD paper, Table 2'),
    ('SRN', 'DVD', 30.53, 0.89, 0.14, 'VDD paper, Table 2'),
    ('EDVR', 'DVD', 31.82, 0.92, None, 'VDD paper, Table 2 (LPIPS printed as "0.9")'),
    ('PVDNet', 'DVD', 32.31, 0.93, None, 'VDD paper, Table 2 (LPIPS printed as "0.9")'),
    ('Deblur-NeRF', 'DVD', 32.29, 0.92, None, 'VDD paper, Table 2 (LPIPS printed as "0.8")'),
    ('VDD', 'DVD', 32.59, 0.93, 0.06, 'VDD paper, Table 2'),
    ('RVRT', 'GoPro', 34.92, None, None, 'Liang et al., RVRT (NeurIPS 2022)'),
    ('RVRT', 'DVD', 34.30, None, None, 'Liang et al., RVRT (NeurIPS 2022)'),
    ('Shift-Net+', 'GoPro', 35.88, None, None, 'Li et al., Shift-Net (CVPR 2023)'),
    ('DSTNet+L', 'GoPro', 35.71, None, None, 'Pan et al., DSTNet (2023)'),
    ('DSTNet+L', 'DVD', 34.63, None, None, 'Pan et al., DSTNet (2023)'),
]


def published_table():
    """Markdown table of the published numbers, each with its source (not measured here)."""
    lines = ['| method | dataset | PSNR | SSIM | LPIPS | source |', '|---|---|---|---|---|---|']
    for method, dataset, psnr, ssim, lpips_value, source in PUBLISHED:
        cells = [method, dataset, f'{psnr:.2f}', '—' if ssim is None else f'{ssim:.2f}',
                 '—' if lpips_value is None else f'{lpips_value:.2f}', source]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)
