"""Side-by-side comparison report: measured table, published numbers, crops and error maps.

    # the demo comparison on SynthGoPro: test every method of options/demo/methods.yml (train the
    # missing ones with --train-missing) and write results/compare/synth/report.md + figures
    python scripts/compare.py --train-missing

    # any BasicSR test-result folders (metrics_*.json + visualization/) against one dataset
    python scripts/compare.py --name mine --dataroot datasets/GoPro/GOPRO_Large/test \
        --result EDVR=results/EDVR_L_deblur_GoPro --result VDD=results/VDD_GoPro
"""
import argparse
import json
import os
import os.path as osp
import sys

ROOT = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))
os.environ.setdefault('HF_HUB_OFFLINE', '1')

from basicsr_vdd.file_io import atomic_write_text  # noqa: E402
from basicsr_vdd.data.video_io import list_frames, read_frame  # noqa: E402
from vdd_demo import runner  # noqa: E402
from vdd_demo.figures import error_maps, find_output, side_by_side  # noqa: E402
from vdd_demo.images import write_png  # noqa: E402
from vdd_demo.report import latest_summary, markdown_table, method_rows, published_table  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--name', default='synth', help='report folder: results/compare/<name>')
    parser.add_argument('--dataroot', default='datasets/SynthGoPro/test', help='test videos (for input and GT)')
    parser.add_argument('--lq-folder', default='blur')
    parser.add_argument('--gt-folder', default='sharp')
    parser.add_argument('--methods', nargs='*', help='demo methods to include (default: all of methods.yml)')
    parser.add_argument('--result', action='append', default=[], metavar='NAME=DIR',
                        help='a BasicSR test-result folder instead of the demo methods (repeatable)')
    parser.add_argument('--train-missing', action='store_true', help='train demo methods that have no checkpoint')
    parser.add_argument('--skip-test', action='store_true', help='reuse existing test results of demo methods')
    parser.add_argument('--frames', nargs='*', default=None, metavar='VIDEO:INDEX',
                        help='frames for the figures (default: the middle frame of the first two videos, within '
                             'the frames every method was tested on)')
    parser.add_argument('--crop', type=int, default=160, help='side of the square crops in the figures')
    return parser.parse_args(argv)


def collect_demo_results(args):
    """``[(name, result dir, budget text or None, max_frames or None)]`` for the demo methods, testing (and
    training) as asked; ``max_frames``: the method is tested on the first frames of each video only."""
    out = []
    for name, spec in runner.methods(args.methods).items():
        checkpoint, extra = runner.checkpoint_of(spec['test']), []
        trained_here = not osp.isfile(checkpoint)
        if trained_here:
            if not args.train_missing:
                print(f'{name}: no checkpoint {osp.relpath(checkpoint, ROOT)}; skipped (use --train-missing)')
                continue
            runner.ensure_trained(spec)
            extra = ['--force_yml', f'path:pretrain_network_g={runner.trained_checkpoint(spec)}']
        results = runner.results_dir_of(spec['test'])
        if not (args.skip_test and osp.isdir(results)):
            runner.run('test', spec['test'], extra)
        budget = (None if trained_here else runner.committed_budget(spec)) \
            or runner.describe_budget(runner.training_budget(spec))
        out.append((spec.get('label', name), results, budget, runner.frames_tested(spec)))
    return out


def default_frames(dataroot, methods):
    """The middle frame of the first two videos, within the frames every method was tested on."""
    videos = sorted(d for d in os.listdir(dataroot) if osp.isdir(osp.join(dataroot, d)))[:2]
    subset = min((m[3] for m in methods if m[3]), default=None)
    return [(v, None if subset is None else subset // 2) for v in videos]


def figures(args, methods, out_dir):
    """Write crops and error maps for the chosen frames; returns the markdown lines that show them."""
    dataroot = osp.join(ROOT, args.dataroot) if not osp.isabs(args.dataroot) else args.dataroot
    chosen = ([(f.split(':')[0], int(f.split(':')[1])) for f in args.frames] if args.frames
              else default_frames(dataroot, methods))
    lines = []
    for video, index in chosen:
        lq_frames = list_frames(osp.join(dataroot, video, args.lq_folder))
        gt_frames = list_frames(osp.join(dataroot, video, args.gt_folder))
        index = len(lq_frames) // 2 if index is None else index
        stem = osp.splitext(osp.basename(lq_frames[index]))[0]
        as_uint8 = lambda path: (read_frame(path) * 255).round().astype('uint8')  # noqa: E731
        blurry, gt = as_uint8(lq_frames[index]), as_uint8(gt_frames[index])
        outputs = []
        for name, results, *_ in methods:
            path = find_output(results, video, stem)
            if path is None:
                print(f'{name}: no saved output for {video}/{stem} in {results} (test with save_img: true)')
                continue
            outputs.append((name, as_uint8(path)))
        crops = side_by_side([('input', blurry)] + outputs + [('ground truth', gt)], args.crop)
        errors, vmax = error_maps([('input', blurry)] + outputs, gt, crop=args.crop)
        base = f'{video}_{stem}'
        write_png(osp.join(out_dir, f'{base}_crops.png'), crops)
        write_png(osp.join(out_dir, f'{base}_errors.png'), errors)
        lines += [f'### {video}, frame {stem}', '', f'![crops]({base}_crops.png)', '',
                  f'|output - GT| (mean over RGB, 0–255), one colour scale 0–{vmax:.0f} for all panels:', '',
                  f'![errors]({base}_errors.png)', '']
    return lines


def main(argv=None):
    args = parse_args(argv)
    out_dir = osp.join(ROOT, 'results', 'compare', args.name)
    os.makedirs(out_dir, exist_ok=True)
    if args.result:
        methods = [(spec.split('=', 1)[0], spec.split('=', 1)[1], None, None) for spec in args.result]
    else:
        methods = collect_demo_results(args)
    dataroot = osp.join(ROOT, args.dataroot) if not osp.isabs(args.dataroot) else args.dataroot
    rows = method_rows(dataroot, [(name, latest_summary(results), subset) for name, results, _, subset in methods],
                       args.lq_folder, args.gt_folder)
    lines = [f'# Comparison: {args.name}', '', f'Test data: `{args.dataroot}` ({rows[0][1]["videos"]} videos, '
             f'{rows[0][1]["frames"]} frames). RGB, uint8-rounded, no border crop. (videos) = mean of per-video '
             'means (BasicSR convention); (frames) = mean over all frames.', '', '## Measured here', '',
             markdown_table(rows), '']
    budgets = [(name, budget) for name, _, budget, _ in methods if budget]
    if budgets:
        lines += ['Training budget of each method (2 CPU cores unless stated otherwise):', '']
        lines += [f'- **{name}**: {budget}' for name, budget in budgets] + ['']
    lines += ['## Published numbers (not measured here; GoPro / DVD, RGB)', '', published_table(), '',
              '## Figures', ''] + figures(args, methods, out_dir)
    atomic_write_text('\n'.join(lines) + '\n', osp.join(out_dir, 'report.md'))
    atomic_write_text(json.dumps({name: summary for name, summary in rows}, indent=2), osp.join(out_dir, 'summary.json'))
    print('\n'.join(lines[:lines.index('## Published numbers (not measured here; GoPro / DVD, RGB)')]))
    print(f'Report: {osp.relpath(osp.join(out_dir, "report.md"), ROOT)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
