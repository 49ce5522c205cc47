"""Deblur your own blurry videos with a trained VDD, EDVR, STFAN or SRN (any test option file of this project).

    python scripts/deblur_video.py -opt options/demo/test_vdd_synth.yml --input blurry.mp4 --output sharp.mp4
    python scripts/deblur_video.py -opt options/test_vdd_gopro.yml --input frames_dir/ --output out_dir/ \
        [--checkpoint experiments/VDD_stage2_GoPro/models/net_g_latest.pth] [--device cuda] \
        [--window 16 --overlap 4 --steps 50 --guidance 2.0 --sampler ddim]

Several inputs: give --input and --output several times (pairs, in order). On many GPUs, start one
process per GPU (``torchrun --nproc_per_node=N scripts/deblur_video.py ...``): process r deblurs
inputs r, r + N, ... on cuda:r.

Streaming: frames are decoded one at a time and each deblurred frame is written as soon as its
windows are done, so memory holds one temporal window, whatever the video's length. A progress bar
(frames, s/frame, ETA) on a terminal, a log line every 10% otherwise; a summary line per video.
Outputs keep the input's frame rate, frame count and (for folders) frame names; ``--crf N`` encodes
with libx264 (0: lossless RGB), default mpeg4 at 20 Mb/s.
"""
import argparse
import os
import os.path as osp
import sys
import tempfile
import time

import torch
import yaml

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), osp.pardir)))
os.environ.setdefault('HF_HUB_OFFLINE', '1')

from basicsr_vdd.archs.checkpoint_io import CheckpointMismatchError  # noqa: E402
from basicsr_vdd.data.video_io import VideoDataError  # noqa: E402
from basicsr_vdd.diffusion.samplers import SAMPLERS, SPACINGS  # noqa: E402
from basicsr_vdd.inference import VIDEO_EXTENSIONS, VideoSink, VideoSource  # noqa: E402
from basicsr_vdd.streaming import build_deblurrer  # noqa: E402
from basicsr_vdd.vdd_diffusion import STARTS, check_sampling  # noqa: E402


def writable_target(path):
    """Raise OSError unless ``path`` (a file or folder to be written) can be created: its nearest existing
    ancestor must be a writable folder, and an existing ``path`` must be of the kind that will be written."""
    is_file = path.lower().endswith(VIDEO_EXTENSIONS)
    if osp.exists(path) and osp.isdir(path) == is_file:
        raise OSError(f'{path}: exists and is {"a folder" if is_file else "a file"}; the output is '
                      f'{"a video file" if is_file else "a frame folder"}')
    ancestor = osp.dirname(osp.abspath(path)) if is_file else osp.abspath(path)
    while not osp.exists(ancestor):
        ancestor = osp.dirname(ancestor)
    if not osp.isdir(ancestor) or not os.access(ancestor, os.W_OK | os.X_OK):
        raise OSError(f'{path}: cannot be created ({ancestor} is not a writable folder)')
    try:  # permissions can say yes where creating fails (read-only mounts, /proc)
        tempfile.TemporaryFile(dir=ancestor).close()
    except OSError as err:
        raise OSError(f'{path}: cannot be created (no file can be made in {ancestor}: {err.strerror})') from err


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-opt', required=True, help='a test option file of this project (VDD, EDVR, STFAN or SRN)')
    parser.add_argument('--input', action='append', required=True, help='video file or frame folder (repeatable)')
    parser.add_argument('--output', action='append', required=True, help='video file (.mp4, ...) or folder')
    parser.add_argument('--checkpoint', help='stage checkpoint (default: path: pretrain_network_g of the option file)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    for name, kind in (('window', int), ('overlap', int), ('steps', int), ('guidance', float), ('seed', int),
                       ('strength', float), ('tile', int), ('tile_overlap', int)):
        parser.add_argument(f'--{name}', type=kind)
    parser.add_argument('--sampler', choices=SAMPLERS)
    parser.add_argument('--spacing', choices=SPACINGS)
    parser.add_argument('--start-from', choices=STARTS, help='with --strength < 1: noise the blur or the mean estimate')
    parser.add_argument('--crf', type=int, help='video outputs: libx264 with this CRF (0 = lossless); default mpeg4')
    parser.add_argument('--debug', action='store_true', help='show the traceback of an error')
    args = parser.parse_args(argv)
    if len(args.input) != len(args.output):
        parser.error('give one --output per --input')
    return args


def run(args):
    """Check every option and path, load the network, deblur each input of this process."""
    for src in args.input:
        if not osp.exists(src):
            raise VideoDataError(f'{src}: no such video file or frame folder')
    for dst in args.output:
        writable_target(dst)
    if args.crf is not None and not 0 <= args.crf <= 51:
        raise ValueError(f'--crf must be in [0, 51], got {args.crf}')
    with open(args.opt) as f:
        opt = yaml.safe_load(f)
    overrides = {'window': args.window, 'overlap': args.overlap, 'steps': args.steps, 'seed': args.seed,
                 'guidance_scale': args.guidance, 'sampler': args.sampler, 'strength': args.strength,
                 'spacing': args.spacing, 'start_from': args.start_from, 'tile': args.tile,
                 'tile_overlap': args.tile_overlap}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if opt.get('model_type') == 'VDDModel':
        check_sampling(dict(opt.get('sampling') or {}, **overrides))

    rank, world = int(os.environ.get('RANK', 0)), int(os.environ.get('WORLD_SIZE', 1))
    device = torch.device(f'cuda:{int(os.environ.get("LOCAL_RANK", 0))}' if args.device == 'cuda' and world > 1
                          else args.device)
    sources = [VideoSource(src) for src in args.input]  # headers only: every input checked before the network
    deblurrer = build_deblurrer(args.opt, args.checkpoint, device, overrides)
    for source, dst in list(zip(sources, args.output))[rank::world]:
        deblur_one(deblurrer, source, dst, args.crf)


def progress(total, label):
    """tqdm on a terminal; otherwise a log line every 10% of the frames."""
    if sys.stderr.isatty():
        from tqdm import tqdm
        return tqdm(total=total, desc=label, unit='frame')

    class Lines:
        def __init__(self):
            self.n, self.start = 0, time.time()

        def update(self, k=1):
            self.n += k
            if self.n == total or self.n % max(total // 10, 1) == 0:
                rate = (time.time() - self.start) / self.n
                print(f'{label}: {self.n}/{total} frames, {rate:.2f} s/frame, ETA {rate * (total - self.n):.0f} s',
                      file=sys.stderr, flush=True)

        def close(self):
            pass
    return Lines()


def deblur_one(deblurrer, source, dst, crf=None):
    """Stream ``source`` through the method into ``dst``; prints a summary line."""
    start, (w, h), name = time.time(), source.size, osp.basename(source.path.rstrip('/'))
    bar = progress(len(source), name)
    with torch.no_grad(), VideoSink(dst, source.fps, source.names, crf) as sink:
        for out in deblurrer.run((f.unsqueeze(0) for f in source), len(source), name):
            sink.write(out[0])
            bar.update(1)
    bar.close()
    print(f'{source.path} -> {dst} ({deblurrer.name}): {len(source)} frames of {w}x{h}, '
          f'{(time.time() - start) / len(source):.2f} s/frame, peak memory {peak_rss_gib():.2f} GiB')


def peak_rss_gib():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def main(argv=None):
    """Exit codes: 0 done, 2 a bad option, path, file or checkpoint (one line on stderr; --debug: traceback)."""
    args = parse_args(argv)
    try:
        run(args)
    except (VideoDataError, CheckpointMismatchError, ValueError, OSError) as err:
        if args.debug:
            raise
        print(f'deblur_video: error: {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
