"""`make demo`: synthetic data if missing -> VDD (stage 0 -> 1 -> 2 unless trained) -> test -> results table.

Every step is the project's own option files through BasicSR's train/test scripts. The demo
networks were trained once with exactly these option files (see demo_checkpoints/README.md) and
the tests load those checkpoints; ``--from-scratch`` retrains them here and tests the new ones.
Baselines (EDVR, STFAN, SRN) are tested and shown when their demo checkpoint exists.

    python scripts/demo.py [--from-scratch] [--methods VDD EDVR]
"""
import argparse
import json
import os
import os.path as osp
import time

ROOT = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))
os.environ.setdefault('HF_HUB_OFFLINE', '1')

from basicsr_vdd.file_io import atomic_write_text  # noqa: E402
from vdd_demo import runner  # noqa: E402
from vdd_demo.report import latest_summary, markdown_table, method_rows  # noqa: E402
from vdd_demo.synthetic import GENERATOR_VERSION  # noqa: E402

DATA = osp.join(ROOT, 'datasets', 'SynthGoPro')


def ensure_data(need_train):
    """The synthetic data: the test split (all that testing committed checkpoints needs) or both splits."""
    meta = osp.join(DATA, 'meta.json')
    splits = ['train', 'test'] if need_train else ['test']
    have = set()
    if osp.isfile(meta):
        with open(meta) as f:
            info = json.load(f)
        # data of an older generator version: regenerate (the test split is the same, the train split grew)
        have = set(info['splits']) if info.get('generator_version') == GENERATOR_VERSION else set()
    if osp.isfile(meta) and not have:
        print(f'Synthetic data: {osp.relpath(DATA, ROOT)} was made by an older generator; regenerating')
    if have >= set(splits):
        print(f'Synthetic data: {osp.relpath(DATA, ROOT)} (exists)')
        return
    # deterministic for the seed: regenerating a split of our own data rewrites the same files
    args = ['scripts/make_synthetic_gopro.py', '--out', DATA, '--seed', '0', '--splits', *sorted(have | set(splits))]
    runner.run_script(args + (['--force'] if osp.isfile(meta) else []))


def prepare_method(name, spec, from_scratch, retrained):
    """Train (from scratch if asked, once per list of training files: ``retrained`` maps them to the
    minutes spent); returns (extra test.py arguments, note) or None when there is nothing to test."""
    checkpoint = runner.checkpoint_of(spec['test'])
    extra, note = [], ''
    if from_scratch:
        key = tuple(spec['train'])
        if key not in retrained:
            retrained[key] = runner.ensure_trained(spec, retrain=True) / 60
        trained = runner.trained_checkpoint(spec)
        extra = ['--force_yml', f'path:pretrain_network_g={trained}']
        note = f'{name} retrained here in {retrained[key]:.0f} min'
    elif not osp.isfile(checkpoint):
        print(f'{name}: no checkpoint {osp.relpath(checkpoint, ROOT)}; not shown (train it or use --from-scratch)')
        return None
    else:
        budget = runner.committed_budget(spec)
        note = f'{name}: {budget}.' if budget else ''
    return extra, note


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--from-scratch', action='store_true', help='retrain the demo networks before testing')
    parser.add_argument('--methods', nargs='*', help='demo methods (default: all of options/demo/methods.yml)')
    args = parser.parse_args()
    start = time.time()
    ensure_data(need_train=args.from_scratch)
    specs, prepared, retrained = runner.methods(args.methods), {}, {}
    for name, spec in specs.items():
        result = prepare_method(name, spec, args.from_scratch, retrained)
        if result is not None:
            prepared[name] = result
    runner.run_tests_in_parallel([(specs[name]['test'], extra) for name, (extra, _) in prepared.items()],
                                 osp.join(ROOT, 'results', 'demo', 'logs'))
    tested = [(specs[name].get('label', name), latest_summary(runner.results_dir_of(specs[name]['test'])),
               runner.frames_tested(specs[name])) for name in prepared]
    notes = [note for _, note in prepared.values() if note]
    table = markdown_table(method_rows(osp.join(DATA, 'test'), tested))
    lines = ['# Demo: video deblurring on SynthGoPro (test split)', '', table, '',
             '(videos) = mean of per-video means (BasicSR convention); (frames) = mean over all frames. '
             'RGB, uint8-rounded, no border crop. s/frame: test time on this machine, one thread per method, '
             'two methods at a time.', '']
    lines += [f'- {n}' for n in notes] + ([''] if notes else [])
    lines.append(f'Demo wall time: {(time.time() - start) / 60:.1f} min.')
    report = '\n'.join(lines) + '\n'
    os.makedirs(osp.join(ROOT, 'results', 'demo'), exist_ok=True)
    atomic_write_text(report, osp.join(ROOT, 'results', 'demo', 'report.md'))
    print('\n' + report + '\nWritten to results/demo/report.md')


if __name__ == '__main__':
    main()
