"""Every GPU answer in one command, for the few minutes a GPU is at hand:

    python scripts/gpu_check.py --out DIR [--minutes 10] [--dry-run]

Steps, each timed; a failure or a timeout is recorded and the next step runs:

* ``environment``: Python, torch, CUDA, the GPU and its memory, package versions -> ``environment.json``
* ``gpu_tests``: ``pytest -m gpu`` (tests/test_gpu.py: autocast steps of both stages, SDPA's fused
  kernels, gradient checkpointing, batched guidance, ``deblur_video --device cuda``, DDP over NCCL)
  -> ``gpu_tests.log``
* ``paper_scale``: ``scripts/check_paper_scale.py`` on ``options/vdd_stage2.yml``: stages 1 and 2 at
  16 frames x 256² (peak allocated and reserved memory, s/step), then one DDIM-50 + guidance window
  -> ``paper_scale.json`` / ``paper_scale.md`` (the table of ``docs/paper_scale.md``)
* ``demo_training`` (with ``--data``, a SynthGoPro root): every demo method of ``options/demo/methods.yml``
  trained from scratch with ``--batch-scale`` times its CPU batch for an equal share of the budget
  (VDD's stages together, iterations set from a measured s/iteration), then tested -> ``demo_training.md``

``summary.json`` / ``summary.md`` list every step with its status and seconds; ``log.txt`` holds what the
steps printed. ``--dry-run`` runs the same steps and writes the same files on the CPU at tiny sizes (the
GPU tests are skipped there, the demo's option file replaces the paper's at 2 frames x 64²): under a
minute, checked in ``make test``. Exit code: 0 when every step passed (or was skipped), 1 otherwise.
"""
import argparse
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata

ROOT = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))
PACKAGES = ('torch', 'torchvision', 'basicsr', 'diffusers', 'open_clip_torch', 'lpips', 'numpy', 'opencv-python',
            'opencv-python-headless', 'av')
# each step's share of --minutes (the rest is slack for start-up)
SHARES = {'gpu_tests': 0.3, 'paper_scale': 0.65}
SHARES_WITH_DATA = {'gpu_tests': 0.15, 'paper_scale': 0.3, 'demo_training': 0.5}


def environment():
    """What ran the check: versions and the GPU."""
    import torch
    env = {'python': platform.python_version(), 'platform': platform.platform(), 'torch': torch.__version__,
           'cuda': torch.version.cuda, 'cuda_available': torch.cuda.is_available(), 'cpu_count': os.cpu_count(),
           'packages': {}}
    for name in PACKAGES:
        try:
            env['packages'][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2 ** 30, 1),
                   gpu_count=torch.cuda.device_count(), capability=f'{props.major}.{props.minor}',
                   bf16_supported=torch.cuda.is_bf16_supported(), cudnn=torch.backends.cudnn.version())
    return env


def run_command(argv, log, timeout):
    """Run ``argv`` in the repository root, append its output to ``log``; ``(status, detail)``."""
    start = time.time()
    try:
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ, HF_HUB_OFFLINE='1', PYTHONUNBUFFERED='1'))
        output, code = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as err:
        output = (err.stdout or b'').decode(errors='replace') + (err.stderr or b'').decode(errors='replace')
        code = None
    with open(log, 'a') as f:
        f.write(f'$ {" ".join(argv)}\n{output}\n[{"timeout" if code is None else f"exit {code}"} after '
                f'{time.time() - start:.0f} s]\n\n')
    if code is None:
        return 'timeout', f'stopped after {timeout:.0f} s'
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return ('passed' if code == 0 else 'failed'), (lines[-1] if lines else f'exit {code}')


def pytest_status(status, detail):
    """pytest's closing line: every test skipped (no GPU) is 'skipped', not 'passed'."""
    if status == 'passed' and ' skipped' in detail and ' passed' not in detail:
        return 'skipped', detail
    return status, detail


def paper_scale_detail(prefix):
    """One line from check_paper_scale's JSON: s/step and peak memory per stage, the sampling window."""
    with open(prefix + '.json') as f:
        result = json.load(f)
    parts = [f"stage {r['stage']}: {r['step_s_steady']} s/step, peak {r['peak_gib']} GiB" for r in result['stages']]
    if result.get('sampling'):
        s = result['sampling']
        parts.append(f"{s['sampler']} {s['steps']} + guidance {s['guidance_scale']}: {s['window_s']} s/window, "
                     f"peak {s['peak_gib']} GiB")
    return '; '.join(parts) + (f"; stopped: {result['error']}" if result.get('error') else '')


def steps(args, out, log):
    """``(name, function() -> (status, detail))`` in the order they run."""
    budget = args.minutes * 60
    py = sys.executable
    if args.dry_run:
        paper = ['-opt', 'options/demo/vdd_stage2_synth.yml', '--device', 'cpu', '--frames', '2', '--size', '64',
                 '--steps', '1', '--sample-steps', '1']
    else:
        paper = ['-opt', 'options/vdd_stage2.yml', '--device', 'cuda', '--frames', '16', '--size', '256',
                 '--steps', '3']

    def write_environment():
        env = environment()
        with open(osp.join(out, 'environment.json'), 'w') as f:
            json.dump(env, f, indent=1)
        return 'passed', env.get('gpu', 'no GPU') + f", torch {env['torch']}"

    def gpu_tests():
        test_log = osp.join(out, 'gpu_tests.log')
        status, detail = run_command([py, '-m', 'pytest', '-q', '-m', 'gpu', '-p', 'no:cacheprovider',
                                      'tests/test_gpu.py'],
                                     test_log, shares['gpu_tests'] * budget)
        return pytest_status(status, detail)

    shares = SHARES_WITH_DATA if args.data else SHARES

    def paper_scale():
        prefix = osp.join(out, 'paper_scale')
        status, detail = run_command([py, 'scripts/check_paper_scale.py', *paper, '--stages', '1', '2',
                                      '--out', prefix], log, shares['paper_scale'] * budget)
        return status, (paper_scale_detail(prefix) if osp.isfile(prefix + '.json') else detail)

    def demo_training():
        if not args.data:
            return 'skipped', 'no --data (a SynthGoPro root: python scripts/make_synthetic_gopro.py --out DIR)'
        from demo_training import train_and_test_all
        work = args.work or tempfile.mkdtemp(prefix='gpu_check_')  # experiments/ and results/: not small files
        seconds = args.train_minutes * 60 if args.train_minutes else shares['demo_training'] * budget
        rows = train_and_test_all(args.data, work, seconds, log,
                                  batch_scale=args.batch_scale or (1 if args.dry_run else 8),
                                  device='cpu' if args.dry_run else 'cuda',
                                  methods=args.methods, probe_iters=2 if args.dry_run else 20)
        with open(osp.join(out, 'demo_training.md'), 'w') as f:
            f.write(demo_training_markdown(rows, args))
        failed = [r['method'] for r in rows if r.get('error')]
        return ('failed' if failed else 'passed'), (f'failed: {failed}' if failed else
                                                    '; '.join(f"{r['method']} {r['psnr']:.2f} dB" for r in rows))

    return [('environment', write_environment), ('gpu_tests', gpu_tests), ('paper_scale', paper_scale),
            ('demo_training', demo_training)]


def demo_training_markdown(rows, args):
    lines = [f"# Demo methods trained on {'the CPU (dry run)' if args.dry_run else 'the GPU'}, equal budgets", '',
             '| method | stages: iterations x batch | training s | PSNR | SSIM | ST-LPIPS |', '|---|---|---|---|---|---|']
    for r in rows:
        if r.get('error'):
            lines.append(f"| {r['method']} | failed: {r['error'].replace('|', '/')} | | | | |")
            continue
        stages = ', '.join(f"{s['iterations']} x {s['batch']}" for s in r['stages'])
        stlpips = 'n/a' if r['stlpips'] is None else f"{r['stlpips']:.4f}"
        lines.append(f"| {r['method']} | {stages} | {r['seconds']:.0f} | {r['psnr']:.2f} | {r['ssim']:.4f} | {stlpips} |")
    return '\n'.join(lines) + '\n'


def summary_markdown(rows, args):
    lines = [f"# gpu_check ({'dry run on the CPU' if args.dry_run else 'GPU'}, budget {args.minutes} min)", '',
             '| step | status | seconds | detail |', '|---|---|---|---|']
    lines += [f"| {r['step']} | {r['status']} | {r['seconds']} | {r['detail'].replace('|', '/')} |" for r in rows]
    return '\n'.join(lines) + '\n'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True, help='folder for the result files (made if absent; must be empty)')
    parser.add_argument('--minutes', type=float, default=10, help='time budget of all steps together')
    parser.add_argument('--dry-run', action='store_true', help='the same steps and files on the CPU at tiny sizes')
    parser.add_argument('--data', help='SynthGoPro root (train/, test/): also train and test the demo methods')
    parser.add_argument('--batch-scale', type=int, help='batch = this x the demo option file batch (default 8; dry run 1)')
    parser.add_argument('--methods', nargs='+', help='demo methods to train (default: all of options/demo/methods.yml)')
    parser.add_argument('--train-minutes', type=float, help='training time of all demo methods together '
                        '(default: half of --minutes when --data is given)')
    parser.add_argument('--work', help='keep the demo trainings (experiments/, results/) here (default: a temporary folder)')
    args = parser.parse_args(argv)
    if not args.minutes > 0:
        parser.error(f'--minutes must be > 0, got {args.minutes}')
    if osp.exists(args.out) and (not osp.isdir(args.out) or os.listdir(args.out)):
        print(f'gpu_check: error: --out {args.out}: exists and is not an empty folder', file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    log = osp.join(args.out, 'log.txt')
    rows = []
    for name, step in steps(args, args.out, log):
        start = time.time()
        try:
            status, detail = step()
        except Exception as err:  # recorded; the next step still runs
            status, detail = 'failed', f'{type(err).__name__}: {err}'
        rows.append({'step': name, 'status': status, 'seconds': round(time.time() - start, 1), 'detail': detail})
        print(f"gpu_check: {name}: {status} ({rows[-1]['seconds']} s) {detail}", flush=True)
        with open(osp.join(args.out, 'summary.json'), 'w') as f:
            json.dump({'dry_run': args.dry_run, 'minutes': args.minutes, 'steps': rows}, f, indent=1)
        with open(osp.join(args.out, 'summary.md'), 'w') as f:
            f.write(summary_markdown(rows, args))
    return 0 if all(r['status'] in ('passed', 'skipped') for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
