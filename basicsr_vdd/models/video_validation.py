"""Video validation for BasicSR video models: per-video and all-frame metric means on any device.

Replaces ``VideoBaseModel.dist_validation`` (see ``compat.py``). Works with two kinds of sample:

* one output frame per sample (BasicSR's sliding-window models such as EDVR): ``visuals['result']``
  is ``[1, C, H, W]`` and the frame index comes from ``idx = 'i/n'``;
* a clip per sample (whole videos or windows, VDD, recurrent models): ``visuals['result']`` is
  ``[1, N, C, H, W]`` and the sample carries ``frame_idx`` (N indices) and ``lq_path`` (N paths).

A metric that raises :class:`basicsr_vdd.metrics.MetricUnavailableError` (LPIPS without its
weights) is reported as unavailable with the reason, never as a number. The summary is logged
and written to ``<log dir>/metrics_<dataset>_<iter>.json`` for ``scripts/compare.py``: strict JSON, a
value that is not a finite number (NaN, inf) is ``null``.
"""
import json
import math
import os
import os.path as osp
import time
from collections import Counter

import torch
from torch import distributed as dist
from tqdm import tqdm

from basicsr.metrics import calculate_metric
from basicsr.utils import get_root_logger, imwrite, tensor2img
from basicsr.utils.dist_util import get_dist_info

from basicsr_vdd.file_io import atomic_write_text
from basicsr_vdd.metrics.lpips_metric import MetricUnavailableError


def _frames_of(sample, result):
    """List of (frame index, result frame [C, H, W], gt frame or None, lq path) of one sample."""
    gt = sample.get('gt_visual')
    if result.dim() == 4:  # [1, C, H, W]: one frame
        frame_idx = int(str(sample['idx']).split('/')[0])
        lq_path = sample['lq_path']
        lq_path = lq_path[0] if isinstance(lq_path, (list, tuple)) else lq_path
        return [(frame_idx, result[0], None if gt is None else gt.reshape(result[0].shape), lq_path)]
    frames = result[0]  # [N, C, H, W]
    idxs = [int(i) for i in sample['frame_idx']]
    paths = list(sample['lq_path'])
    if len(idxs) != frames.shape[0] or len(paths) != frames.shape[0]:
        raise ValueError(f'{sample["folder"]}: {frames.shape[0]} output frames for {len(idxs)} frame indices')
    gts = [None] * len(idxs) if gt is None else list(gt.reshape(frames.shape))
    return list(zip(idxs, frames, gts, paths))


def _image_path(opt, dataset_name, folder, lq_path, current_iter):
    name = osp.splitext(osp.basename(lq_path))[0]
    suffix = opt['val'].get('suffix') or (opt['name'] if not opt['is_train'] else str(current_iter))
    return osp.join(opt['path']['visualization'], dataset_name, folder, f'{name}_{suffix}.png')


def video_validation(self, dataloader, current_iter, tb_logger, save_img):
    """Validate a BasicSR video model on a video test dataset (drop-in for ``dist_validation``)."""
    dataset = dataloader.dataset
    dataset_name = dataset.opt['name']
    metric_opts = self.opt['val'].get('metrics') or {}
    metric_names = list(metric_opts.keys())
    rank, world_size = get_dist_info()
    frames_per_folder = Counter(dataset.data_info['folder'])
    # NaN marks "not computed"; the sums over ranks are taken with NaN -> 0 plus a count tensor
    results = {
        folder: torch.zeros(n, len(metric_names), dtype=torch.float64, device=self.device)
        for folder, n in frames_per_folder.items()
    }
    counts = {folder: torch.zeros(n, dtype=torch.float64, device=self.device) for folder, n in frames_per_folder.items()}
    unavailable = {}
    if metric_names:
        self._initialize_best_metric_results(dataset_name)
    seconds, frames_done = 0.0, 0

    pbar = tqdm(total=len(dataset), unit='sample') if rank == 0 else None
    for idx in range(rank, len(dataset), world_size):
        sample = dataset[idx]
        sample['lq'] = sample['lq'].unsqueeze(0)
        if 'gt' in sample:
            sample['gt'] = sample['gt'].unsqueeze(0)
        folder = sample['folder']
        self.feed_data(sample)
        start = time.perf_counter()
        self.test()
        visuals = self.get_current_visuals()
        seconds += time.perf_counter() - start
        sample['gt_visual'] = visuals.get('gt')
        frames = _frames_of(sample, visuals['result'])
        frames_done += len(frames)
        for frame_idx, out, gt, lq_path in frames:
            metric_data = {'img': tensor2img([out])}
            if gt is not None:
                metric_data['img2'] = tensor2img([gt])
            if save_img:
                imwrite(metric_data['img'], _image_path(self.opt, dataset_name, folder, lq_path, current_iter))
            if gt is None:
                continue
            counts[folder][frame_idx] += 1
            for m, (name, metric_opt) in enumerate(metric_opts.items()):
                if name in unavailable:
                    continue
                try:
                    results[folder][frame_idx, m] += calculate_metric(metric_data, metric_opt)
                except MetricUnavailableError as err:
                    unavailable[name] = str(err)
                    get_root_logger().warning(f'{name}: {err}')
        for attr in ('lq', 'gt', 'output'):
            if hasattr(self, attr):
                delattr(self, attr)
        if pbar is not None:
            pbar.update(1)
            pbar.set_description(f'Test {folder}')
    if pbar is not None:
        pbar.close()

    timing = torch.tensor([seconds, float(frames_done)], dtype=torch.float64, device=self.device)
    if self.opt['dist']:
        for folder in results:
            dist.reduce(results[folder], 0)
            dist.reduce(counts[folder], 0)
        dist.reduce(timing, 0)
        dist.barrier()
    if rank != 0 or not metric_names:
        return
    summary = summarize_video_metrics(
        {f: r.cpu() for f, r in results.items()}, {f: c.cpu() for f, c in counts.items()}, metric_names, unavailable)
    bare = self.get_bare_model(self.net_g)
    summary.update(dataset=dataset_name, iter=current_iter, model=type(bare).__name__,
                   parameters=sum(p.numel() for p in bare.parameters()),
                   seconds_per_frame=(timing[0] / max(timing[1].item(), 1.0)).item(),
                   frames=int(sum(c.sum().item() for c in counts.values())), videos=len(results))
    for name in metric_names:
        if name not in unavailable:
            self._update_best_metric_result(dataset_name, name, summary['metrics'][name]['per_video_mean'],
                                            current_iter)
    self.last_validation = summary
    _log_summary(self, summary, tb_logger, current_iter)


def summarize_video_metrics(results, counts, metric_names, unavailable):
    """Per-video means, their mean over videos (BasicSR's convention) and the mean over all frames.

    results: folder -> [num_frames, num_metrics] sums; counts: folder -> [num_frames] how many
    times each frame was scored (frames never scored are left out, frames scored twice averaged).
    """
    summary = {'metrics': {}}
    for m, name in enumerate(metric_names):
        if name in unavailable:
            summary['metrics'][name] = {'unavailable': unavailable[name]}
            continue
        per_video, all_values = {}, []
        for folder, sums in results.items():
            scored = counts[folder] > 0
            if not scored.any():
                continue
            values = sums[scored, m] / counts[folder][scored]
            per_video[folder] = values.mean().item()
            all_values.append(values)
        if not per_video:
            summary['metrics'][name] = {'unavailable': 'no frame had a ground truth'}
            continue
        all_values = torch.cat(all_values)
        summary['metrics'][name] = {
            'per_video_mean': sum(per_video.values()) / len(per_video),
            'all_frame_mean': all_values.mean().item(),
            'per_video': per_video,
        }
    return summary


def _log_summary(model, summary, tb_logger, current_iter):
    dataset_name = summary['dataset']
    lines = [f'Validation {dataset_name} ({summary["videos"]} videos, {summary["frames"]} frames, '
             f'{summary["seconds_per_frame"]:.3f} s/frame)']
    for name, values in summary['metrics'].items():
        if 'unavailable' in values:
            lines.append(f'\t # {name}: unavailable ({values["unavailable"]})')
            continue
        line = (f'\t # {name}: {values["per_video_mean"]:.4f} (mean over videos)'
                f'  {values["all_frame_mean"]:.4f} (mean over all frames)')
        for folder, value in values['per_video'].items():
            line += f'\t # {folder}: {value:.4f}'
        best = getattr(model, 'best_metric_results', {}).get(dataset_name, {}).get(name)
        if best is not None:
            line += f'\n\t    Best: {best["val"]:.4f} @ {best["iter"]} iter'
        lines.append(line)
    get_root_logger().info('\n'.join(lines))
    if tb_logger:
        for name, values in summary['metrics'].items():
            if 'per_video_mean' in values:
                tb_logger.add_scalar(f'metrics/{name}', values['per_video_mean'], current_iter)
                tb_logger.add_scalar(f'metrics/{name}_all_frames', values['all_frame_mean'], current_iter)
    out_dir = model.opt['path'].get('log')
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        path = osp.join(out_dir, f'metrics_{dataset_name}_{current_iter}.json')
        atomic_write_text(json.dumps(finite_or_none(summary), indent=2, allow_nan=False), path)


def finite_or_none(value):
    """``value`` (dicts and lists of numbers, at any depth) with every NaN or infinite float replaced by
    None: strict JSON has neither, so they are written as ``null`` (a metric that was not a number)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    return value
