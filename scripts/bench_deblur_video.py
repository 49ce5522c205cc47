"""Peak memory and speed of scripts/deblur_video.py against video length and size (a benchmark, not a test).

    python scripts/bench_deblur_video.py -opt options/demo/test_vdd_synth.yml -opt options/demo/test_edvr_synth.yml \
        [--lengths 50 200 800] [--hd-frames 32] [--tile 256] [--out docs/bench_deblur_video.md]

Inputs are made from the SynthGoPro test split's blurry frames (cycled to the length; upscaled to
1280x720 for the HD rows) and written as lossless video files; each measurement is one
``deblur_video.py`` process (its peak RSS as its own summary line reports it).
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

from basicsr_vdd.pipelines.inference import VideoSink

ROOT = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))


def make_input(path, frames, size, source):
    import torch
    files = sorted(os.listdir(source))
    with VideoSink(path, fps=30, crf=0) as sink:
        for i in range(frames):
            img = cv2.cvtColor(cv2.imread(osp.join(source, files[i % len(files)])), cv2.COLOR_BGR2RGB)
            if img.shape[1::-1] != size:
                img = cv2.resize(img, size, interpolation=cv2.INTER_CUBIC)
            sink.write(torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float() / 255)


def measure(opt, src, dst, extra):
    start = time.time()
    proc = subprocess.run([sys.executable, osp.join(ROOT, 'scripts', 'deblur_video.py'), '-opt', opt, '--input', src,
                           '--output', dst, *extra], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1')))
    if proc.returncode:
        raise RuntimeError(proc.stderr[-2000:])
    summary = proc.stdout.strip().splitlines()[-1]
    s_frame = float(summary.split(' s/frame')[0].split(', ')[-1])
    # the child's own peak from its summary line (getrusage of children would be the max over all of them)
    own = float(summary.split('memory ')[-1].split(' GiB')[0])  # peak memory / peak GPU memory
    return {'s_frame': s_frame, 'peak_gib': own, 'wall_s': round(time.time() - start, 1)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-opt', action='append', required=True)
    parser.add_argument('--lengths', type=int, nargs='+', default=[50, 200, 800])
    parser.add_argument('--hd-frames', type=int, default=32)
    parser.add_argument('--tile', type=int, default=256, help='the tiled HD row (VDD only; other rows: whole frames)')
    parser.add_argument('--source', default=osp.join(ROOT, 'datasets', 'SynthGoPro', 'test', '001_china', 'blur'))
    parser.add_argument('--out', default=osp.join(ROOT, 'docs', 'bench_deblur_video.md'))
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        inputs = [(n, (256, 256)) for n in args.lengths] + ([(args.hd_frames, (1280, 720))] if args.hd_frames else [])
        for n, size in inputs:
            src = osp.join(work, f'in_{n}_{size[0]}.mkv')
            make_input(src, n, size, args.source)
            for opt in args.opt:
                vdd = 'vdd' in osp.basename(opt)
                tiles = [None, args.tile] if size[0] > 256 and vdd else [None]
                for tile in tiles:
                    extra = (['--tile', str(tile), '--tile_overlap', '32'] if tile else ['--tile', '0']) if vdd else []
                    r = measure(opt, src, osp.join(work, 'out.mkv'), extra + ['--crf', '0', '--overwrite'])  # replaces its own previous output
                    rows.append((osp.basename(opt), n, f'{size[0]}x{size[1]}', tile or '-', r['s_frame'], r['peak_gib']))
                    print(rows[-1], flush=True)
    lines = ['| option file | frames | size | tile | s/frame | peak RSS (GiB) |', '|---|---|---|---|---|---|']
    lines += [f'| {a} | {b} | {c} | {d} | {e:.2f} | {f:.2f} |' for a, b, c, d, e, f in rows]
    for opt in args.opt:
        mine = [r for r in rows if r[0] == osp.basename(opt) and r[2] == '256x256']
        if len(mine) >= 2:
            lines.append(f'\n{osp.basename(opt)}: peak RSS at {mine[-1][1]} frames / at {mine[0][1]} frames = '
                         f'{mine[-1][5] / mine[0][5]:.3f}')
    text = (f'`python scripts/bench_deblur_video.py {" ".join(argv if argv is not None else sys.argv[1:])}` '
            f'(one CPU thread per process)\n\n' + '\n'.join(lines) + '\n')
    with open(args.out, 'w') as f:
        f.write(text)
    print(text)


if __name__ == '__main__':
    main()
