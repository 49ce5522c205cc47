"""Run the demo methods through BasicSR's own scripts: train what has no checkpoint, test, find results.

The methods are listed in ``options/demo/methods.yml`` (train option files in order, one test
option file). Everything goes through ``basicsr_vdd/train.py`` / ``test.py`` in subprocesses
from the repository root, exactly as a user would run them.
"""
import glob
import os
import os.path as osp
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from basicsr_vdd.file_io import read_options

ROOT = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))
METHODS_FILE = osp.join(ROOT, 'options', 'demo', 'methods.yml')


def repo_options(path):
    """An option file by its path in the repository (or an absolute path)."""
    return read_options(osp.join(ROOT, path))


def methods(names=None):
    """``{name: {'train': [...], 'test': path, 'label'?, 'budget'?}}`` from methods.yml, in file order
    (optionally filtered); ``label`` is the row name in tables (default: the name)."""
    specs = repo_options(METHODS_FILE)
    unknown = set(names or ()) - set(specs)
    if unknown:
        raise ValueError(f'unknown methods {sorted(unknown)}; {METHODS_FILE} lists {list(specs)}')
    return {k: v for k, v in specs.items() if names is None or k in names}


def checkpoint_of(option_path):
    return osp.join(ROOT, repo_options(option_path)['path']['pretrain_network_g'])


def results_dir_of(test_option_path):
    return osp.join(ROOT, 'results', repo_options(test_option_path)['name'])


def run_script(args):
    """Run ``python <args>`` from the repository root, streaming its output; returns wall seconds."""
    cmd = [sys.executable, *args]
    print(f'\n$ {" ".join(cmd)}', flush=True)
    start = time.time()
    subprocess.run(cmd, cwd=ROOT, check=True)
    seconds = time.time() - start
    print(f'--- {" ".join(args[:3])}: {seconds / 60:.1f} min', flush=True)
    return seconds


def run(kind, option_path, extra=()):
    """Run BasicSR's ``train``/``test`` pipeline with our plugin; returns wall seconds; raises on failure."""
    return run_script([osp.join('basicsr_vdd', f'{kind}.py'), '-opt', option_path, *extra])


def run_tests_in_parallel(jobs, log_dir, workers=2):
    """Run ``test.py`` for ``jobs`` ``[(option_path, extra)]``, ``workers`` at a time with one thread each
    (the small demo networks use one core better than two: EDVR and VDD side by side take 127 s,
    one after the other 211 s); each run's output goes to ``log_dir/<option file>.log``. Returns
    the wall seconds of each job; raises CalledProcessError naming the log of the first that failed."""
    os.makedirs(log_dir, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')

    def one(job):
        option_path, extra = job
        cmd = [sys.executable, osp.join('basicsr_vdd', 'test.py'), '-opt', option_path, *extra]
        log = osp.join(log_dir, osp.splitext(osp.basename(option_path))[0] + '.log')
        start = time.time()
        with open(log, 'w') as f:
            proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
        seconds = time.time() - start
        print(f'--- test {option_path}: {seconds / 60:.1f} min (log: {osp.relpath(log, ROOT)})', flush=True)
        if proc.returncode:
            with open(log) as f:
                sys.stderr.write(''.join(f.readlines()[-20:]))
            raise subprocess.CalledProcessError(proc.returncode, cmd, output=f'see {log}')
        return seconds

    print(f'\nTesting {len(jobs)} option files, {workers} at a time (one thread each): '
          f'{", ".join(option for option, _ in jobs)}', flush=True)
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, jobs))


def committed_budget(spec):
    """How the committed checkpoint a method's test loads was trained (``budget`` in methods.yml),
    or None when there is no such text or no such file."""
    checkpoint = checkpoint_of(spec['test'])
    if not spec.get('budget') or not osp.isfile(checkpoint):
        return None
    return f'{spec["budget"]} (committed checkpoint `{osp.relpath(checkpoint, ROOT)}`)'


def frames_tested(spec):
    """``max_frames`` of a method's test set: it is tested on the first frames of each video (None: all)."""
    return repo_options(spec['test'])['datasets']['test'].get('max_frames')


def trained_checkpoint(spec):
    """The latest checkpoint of a method's last training stage (under experiments/)."""
    return osp.join(ROOT, 'experiments', repo_options(spec['train'][-1])['name'], 'models', 'net_g_latest.pth')


def ensure_trained(spec, retrain=False):
    """Train each stage whose checkpoint is missing (all of them with ``retrain``: BasicSR archives an
    existing experiment folder as ``<name>_archived_<time>``); returns seconds spent."""
    spent = 0.0
    for option_path in spec['train']:
        opt = repo_options(option_path)
        latest = osp.join(ROOT, 'experiments', opt['name'], 'models', 'net_g_latest.pth')
        if osp.isfile(latest) and not retrain:
            print(f'{option_path}: trained ({osp.relpath(latest, ROOT)})')
            continue
        spent += run('train', option_path, [] if retrain else ['--auto_resume'])
    return spent


def training_budget(spec):
    """What each training stage of a method was given: iterations, batch, clip, crop, wall time (from its log)."""
    stages = []
    for option_path in spec['train']:
        opt = repo_options(option_path)
        data = opt['datasets']['train']
        logs = sorted(glob.glob(osp.join(ROOT, 'experiments', opt['name'], f'train_{opt["name"]}_*.log')))
        seconds = None
        for log in logs:  # the last run that finished; resumed runs add up
            with open(log) as f:
                match = re.search(r'Time consumed: (\d+):(\d\d):(\d\d)', f.read())
            if match:
                h, m, s = map(int, match.groups())
                seconds = (seconds or 0) + 3600 * h + 60 * m + s
        stages.append({'option': option_path, 'iterations': opt['train']['total_iter'],
                       'batch': data['batch_size_per_gpu'], 'frames': data.get('num_frame'),
                       'crop': data.get('gt_size'), 'seconds': seconds})
    return stages


def describe_budget(stages):
    parts = []
    for s in stages:
        wall = f', {s["seconds"] / 60:.0f} min' if s['seconds'] is not None else ', time not logged'
        parts.append(f'{osp.basename(s["option"])}: {s["iterations"]} it x {s["batch"]} clips of '
                     f'{s["frames"]} x {s["crop"]}²{wall}')
    return '; '.join(parts)
