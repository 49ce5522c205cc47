"""Train every demo method from scratch for an equal time budget, then test it on the same data:

    python scripts/demo_training.py --data datasets/SynthGoPro --root WORK --minutes 60 [--device cuda]
        [--batch-scale 8] [--methods EDVR VDD]

Each method of ``options/demo/methods.yml`` (VDD's stages together) gets ``--minutes / number of
methods``; a method's stages share it in proportion to their option files' ``total_iter``. For each
stage a short probe measures seconds per iteration at the scaled batch, then the stage trains for
the iterations that fit (its cosine schedule stretched to them) and the last stage's checkpoint is
tested with the method's test option file. Everything is written under ``--root``
(``experiments/``, ``results/``); prints a Markdown table. ``scripts/gpu_check.py --data`` runs it.
"""
import argparse
import copy
import glob
import os
import os.path as osp
import re
import subprocess
import sys
import time

import yaml

from vdd_demo.report import latest_summary
from vdd_demo.runner import repo_options

ROOT = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))
METHODS_FILE = osp.join(ROOT, 'options', 'demo', 'methods.yml')
LAUNCH = ('import sys; from basicsr_vdd.cli import main; sys.argv = [{kind!r} + ".py", "-opt", {opt!r}]; '
          'sys.exit(main({kind!r}, {root!r}))')


def training_chains(names=None):
    """``{method: (train option files, test option file)}``; methods sharing a chain (VDD and its
    sampled row) are trained once, under the first name."""
    chains, seen = {}, set()
    for name, spec in repo_options(METHODS_FILE).items():
        chain = tuple(spec['train'])
        if (names and name not in names) or chain in seen:
            continue
        seen.add(chain)
        chains[name] = (list(chain), spec['test'])
    return chains


def run_pipeline(kind, opt, root, log):
    """Write ``opt`` under ``root`` and run ``basicsr_vdd`` train/test on it; returns wall seconds."""
    path = osp.join(root, f'{opt["name"]}_{kind}.yml')
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    start = time.time()
    proc = subprocess.run([sys.executable, '-c', LAUNCH.format(kind=kind, opt=path, root=root)], cwd=ROOT,
                          capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE='1'))
    with open(log, 'a') as f:
        f.write(f'$ {kind} {path}\n{proc.stdout[-4000:]}{proc.stderr[-4000:]}\n')
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError(f'{kind} {opt["name"]}: exit {proc.returncode}: {lines[-1] if lines else ""}')
    return time.time() - start


def seconds_per_iteration(root, name):
    """Mean ``time (data)`` of the last logged iterations of ``experiments/<name>``."""
    logs = sorted(glob.glob(osp.join(root, 'experiments', name, f'train_{name}_*.log')))
    with open(logs[-1]) as f:
        times = [float(t) for t in re.findall(r'time \(data\): ([0-9.]+)', f.read())]
    if not times:
        raise RuntimeError(f'{name}: no iteration time in its log')
    return times[-1]


def stage_options(path, name, data, device, batch_scale, iterations, pretrain):
    """The demo option file ``path`` for this run: own name, data, device, scaled batch, ``iterations``
    with its cosine periods stretched to them, no validation, one checkpoint at the end."""
    opt = copy.deepcopy(repo_options(path))
    opt['name'], opt['num_gpu'] = name, 1 if device == 'cuda' else 0
    train_data = opt['datasets']['train']
    train_data.update(dataroot=osp.join(data, 'train'), batch_size_per_gpu=train_data['batch_size_per_gpu'] * batch_scale,
                      num_worker_per_gpu=min(4, os.cpu_count() or 1) if device == 'cuda' else 0)
    opt['datasets'] = {'train': train_data}
    opt.pop('val', None)
    train = opt['train']
    old = train['total_iter']
    train['total_iter'] = iterations
    scheduler = train.get('scheduler') or {}
    if 'periods' in scheduler:  # CosineAnnealingRestartLR: the same restarts, stretched to the new length
        periods = [round(p * iterations / old) for p in scheduler['periods'][:-1]]
        last = iterations - sum(periods)
        if min(periods + [last]) < 1:  # too few iterations for the restarts: one cosine
            periods, last, scheduler['restart_weights'] = [], iterations, [1]
        scheduler['periods'] = periods + [last]
    opt['logger'] = dict(opt.get('logger') or {}, print_freq=1, save_checkpoint_freq=iterations, use_tb_logger=False)
    opt['logger'].pop('wandb', None)
    opt['path'] = dict(opt.get('path') or {}, pretrain_network_g=pretrain, resume_state=None)
    return opt


def train_and_test_all(data, root, seconds, log, batch_scale=8, device='cuda', methods=None, probe_iters=20):
    """Rows ``{'method', 'stages': [{'iterations', 'batch'}], 'seconds', 'psnr', 'ssim', 'stlpips'}``
    (or ``'error'``) for every demo method, each trained for ``seconds / number of methods``."""
    os.makedirs(root, exist_ok=True)
    chains = training_chains(methods)
    rows = []
    for method, (train_paths, test_path) in chains.items():
        try:
            rows.append(train_and_test(method, train_paths, test_path, data, root, seconds / len(chains), log,
                                       batch_scale, device, probe_iters))
        except Exception as err:  # recorded; the next method still runs
            rows.append({'method': method, 'error': f'{type(err).__name__}: {err}'})
    return rows


def train_and_test(method, train_paths, test_path, data, root, seconds, log, batch_scale, device, probe_iters):
    totals = [repo_options(p)['train']['total_iter'] for p in train_paths]
    stages, spent, pretrain = [], 0.0, None
    for path, total in zip(train_paths, totals):
        name = f'gpu_{repo_options(path)["name"]}'
        probe = stage_options(path, f'{name}_probe', data, device, batch_scale, probe_iters, pretrain)
        run_pipeline('train', probe, root, log)
        per_it = seconds_per_iteration(root, probe['name'])
        iterations = max(1, int(seconds * total / sum(totals) / per_it))
        opt = stage_options(path, name, data, device, batch_scale, iterations, pretrain)
        spent += run_pipeline('train', opt, root, log)
        stages.append({'iterations': iterations, 'batch': opt['datasets']['train']['batch_size_per_gpu']})
        pretrain = osp.join(root, 'experiments', name, 'models', 'net_g_latest.pth')
    test = copy.deepcopy(repo_options(test_path))
    test['name'], test['num_gpu'] = f'gpu_{test["name"]}', 1 if device == 'cuda' else 0
    test['datasets']['test']['dataroot'] = osp.join(data, 'test')
    test['path'] = dict(test['path'], pretrain_network_g=pretrain)
    run_pipeline('test', test, root, log)
    summary = latest_summary(osp.join(root, 'results', test['name']))
    metric = summary['metrics']
    stlpips = metric.get('stlpips', {}).get('per_video_mean')
    return {'method': method, 'stages': stages, 'seconds': spent, 'psnr': metric['psnr']['per_video_mean'],
            'ssim': metric['ssim']['per_video_mean'], 'stlpips': stlpips}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--data', required=True, help='SynthGoPro root with train/ and test/')
    parser.add_argument('--root', required=True, help='where experiments/ and results/ go')
    parser.add_argument('--minutes', type=float, required=True, help='training budget of all methods together')
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cuda')
    parser.add_argument('--batch-scale', type=int, default=8)
    parser.add_argument('--methods', nargs='+')
    args = parser.parse_args(argv)
    for split in ('train', 'test'):
        if not osp.isdir(osp.join(args.data, split)):
            parser.error(f'--data {args.data}: no {split}/ folder')
    rows = train_and_test_all(args.data, args.root, args.minutes * 60, osp.join(args.root, 'log.txt'),
                              args.batch_scale, args.device, args.methods)
    for r in rows:
        print(r)
    return 1 if any(r.get('error') for r in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
