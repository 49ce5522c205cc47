"""`make demo`: synthetic data if missing -> train what has no checkpoint -> test -> results table.

Everything runs through the project's own option files and BasicSR's train/test pipelines; this
script only orders the steps and prints the table (also written to results/demo/report.md).

    python scripts/demo.py                 # use trained checkpoints where they exist
    python scripts/demo.py --from-scratch  # retrain every demo network
"""
import argparse
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

ROOT = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))
sys.path.insert(0, ROOT)
os.environ.setdefault('HF_HUB_OFFLINE', '1')

DATA = osp.join(ROOT, 'datasets', 'SynthGoPro')
EDVR = {
    'label': 'EDVR (demo, BasicSR arch)',
    'train_opt': 'options/demo/train_edvr_synth.yml',
    'test_opt': 'options/demo/test_edvr_synth.yml',
    'checkpoint': 'experiments/demo_EDVR_SynthGoPro/models/net_g_latest.pth',
    'results': 'results/demo_EDVR_SynthGoPro',
}


def run(args, what):
    """Run a command from the repository root, streaming its output; stop the demo if it fails."""
    print(f'\n=== {what}\n$ {" ".join(args)}', flush=True)
    start = time.time()
    subprocess.run(args, cwd=ROOT, check=True)
    print(f'=== {what}: {time.time() - start:.0f} s', flush=True)
    return time.time() - start


def ensure_data():
    if osp.isfile(osp.join(DATA, 'meta.json')):
        print(f'Synthetic data: {DATA} (exists)')
        return
    run([sys.executable, 'scripts/make_synthetic_gopro.py', '--out', DATA, '--seed', '0'], 'synthetic GoPro-style data')


def ensure_trained(method, from_scratch):
    """Train with the method's demo option file unless its checkpoint exists (or --from-scratch)."""
    checkpoint = osp.join(ROOT, method['checkpoint'])
    if osp.isfile(checkpoint) and not from_scratch:
        print(f'{method["label"]}: using {method["checkpoint"]}')
        return None
    name = osp.basename(osp.dirname(osp.dirname(checkpoint)))
    if from_scratch and osp.isdir(osp.join(ROOT, 'experiments', name)):
        shutil.rmtree(osp.join(ROOT, 'experiments', name))
    return run([sys.executable, 'basicsr_vdd/train.py', '-opt', method['train_opt']], f'train {method["label"]}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--from-scratch', action='store_true', help='retrain every demo network')
    args = parser.parse_args()

    from basicsr_vdd.report import input_summary, latest_summary, markdown_table

    ensure_data()
    rows = [('blurry input', input_summary(osp.join(DATA, 'test')))]
    train_seconds = ensure_trained(EDVR, args.from_scratch)
    run([sys.executable, 'basicsr_vdd/test.py', '-opt', EDVR['test_opt']], f'test {EDVR["label"]}')
    rows.append((EDVR['label'], latest_summary(osp.join(ROOT, EDVR['results']))))

    table = markdown_table(rows)
    notes = ['(videos) = mean of per-video means (BasicSR convention); (frames) = mean over all frames.',
             'Data: SynthGoPro test split (datasets/SynthGoPro/test), RGB, uint8-rounded, no border crop.']
    if train_seconds is not None:
        notes.append(f'EDVR trained in this run: {train_seconds / 60:.1f} min on this machine.')
    report = '# Demo results\n\n' + table + '\n\n' + '\n'.join(notes) + '\n'
    os.makedirs(osp.join(ROOT, 'results', 'demo'), exist_ok=True)
    with open(osp.join(ROOT, 'results', 'demo', 'report.md'), 'w') as f:
        f.write(report)
    print('\n' + report)
    print(f'Written to {osp.join("results", "demo", "report.md")}')


if __name__ == '__main__':
    main()
