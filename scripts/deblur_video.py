"""Deblur your own blurry videos with a trained VDD, EDVR, STFAN, PVDNet, SRN or NAFNet (any test option file
of this project).

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
Outputs keep the input's frame rate, frame count, size (odd ones too) and (for folders) frame names;
``--crf N`` encodes with libx264 (0: lossless RGB), default mpeg4 at 20 Mb/s. An image file in or out
is a one-frame video.

Never loses data: an output that is, contains or lies inside an input, two equal or nested outputs,
and an existing output (a non-empty folder or a file) are refused before the network loads. With
``--overwrite`` only an earlier output of this tool is replaced: a folder it wrote holds
``.deblur_video.json`` (each frame's SHA-256), a file it wrote has ``<file>.deblur_video.json`` next
to it; a folder or file with anything else, or changed since, is never replaced. Results are written
under ``<output>.partial`` (``<output>.partial.<ext>`` for files) and renamed when complete; Ctrl-C
and SIGTERM remove it (exit 130 / 143); one left by kill -9 is named and refused.
"""
import argparse
import math
import os
import os.path as osp
import sys
import tempfile
import time

import torch

os.environ.setdefault('HF_HUB_OFFLINE', '1')

from basicsr_vdd import file_io, interrupts  # noqa: E402
from basicsr_vdd.archs.checkpoint_io import CheckpointMismatchError  # noqa: E402
from basicsr_vdd.data.video_io import VideoDataError  # noqa: E402
from basicsr_vdd.diffusion.samplers import SAMPLERS, SPACINGS  # noqa: E402
from basicsr_vdd.pipelines.inference import (WRITABLE_VIDEO, OutputRefused, VideoSink, VideoSource,  # noqa: E402
                                             check_output, output_kind, partial_path)
from basicsr_vdd.pipelines.streaming import STREAMERS, build_deblurrer  # noqa: E402
from basicsr_vdd.pipelines.vdd_diffusion import STARTS, check_sampling  # noqa: E402

USER_ERRORS = (VideoDataError, CheckpointMismatchError, ValueError, OSError)  # OutputRefused is an OSError


def writable_target(path):
    """Raise OSError unless ``path`` (a file or folder to be written) can be created: its nearest existing
    ancestor must be a writable folder."""
    ancestor = osp.abspath(path) if output_kind(path) == 'folder' else osp.dirname(osp.abspath(path))
    while not osp.exists(ancestor):
        ancestor = osp.dirname(ancestor)
    if not osp.isdir(ancestor) or not os.access(ancestor, os.W_OK | os.X_OK):
        raise OSError(f'{path}: cannot be created ({ancestor} is not a writable folder)')
    try:  # permissions can say yes where creating fails (read-only mounts, /proc)
        tempfile.TemporaryFile(dir=ancestor).close()
    except OSError as err:
        raise OSError(f'{path}: cannot be created (no file can be made in {ancestor}: {err.strerror})') from err


def _inside(path, folder):
    """``path`` is ``folder`` or lies under it (both real paths)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def check_paths(inputs, outputs, overwrite=False, rank=0, world=1):
    """Refuse (OutputRefused, one line naming the paths) any output that is, contains or lies inside an
    input, equals or nests with another output, or (outputs ``rank::world``, the ones this process writes:
    another may have started its own) cannot replace what is there (:func:`check_output`)."""
    real_in = [osp.realpath(p) for p in inputs]
    for i, out in enumerate(outputs):
        if output_kind(out) == 'video' and not out.lower().endswith(WRITABLE_VIDEO):
            raise OutputRefused(f'--output {out}: cannot encode {osp.splitext(out)[1]} '
                                f'(use {", ".join(WRITABLE_VIDEO)})')
        written = [osp.realpath(p) for p in (out, partial_path(osp.normpath(out)))]
        for src, real in zip(inputs, real_in):
            for path in written:
                if path == real:
                    raise OutputRefused(f'--output {out}: is the input {src}')
                if _inside(real, path):
                    raise OutputRefused(f'--output {out}: contains the input {src}')
                if osp.isdir(real) and _inside(path, real):
                    raise OutputRefused(f'--output {out}: lies inside the input folder {src}')
        for other in outputs[:i]:
            a, b = osp.realpath(out), osp.realpath(other)
            if _inside(a, b) or _inside(b, a):
                raise OutputRefused(f'--output {out}: the same as or nested with --output {other}')
        if i % world == rank:
            check_output(osp.normpath(out), overwrite)
            writable_target(out)


def read_options(path):
    """The test option file as a dict; ValueError naming -opt when it is missing, not YAML, not a mapping or
    not an option file of a method that streams (:data:`STREAMERS`)."""
    opt = file_io.read_options(path)
    if opt.get('model_type') not in STREAMERS or not isinstance(opt.get('network_g'), dict):
        raise ValueError(f'-opt {path}: needs model_type: (one of {", ".join(sorted(STREAMERS))}) and network_g:')
    return opt


def parse_device(name):
    """``torch.device`` for --device; torchrun's processes take cuda:LOCAL_RANK. ValueError naming --device."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f'--device {name}: not a device (cpu, cuda, cuda:N, mps)') from None
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f'--device {name}: no CUDA GPU is available here; use --device cpu')
        if device.index is None and int(os.environ.get('WORLD_SIZE', 1)) > 1:
            device = torch.device(f'cuda:{int(os.environ.get("LOCAL_RANK", 0))}')
        if (device.index or 0) >= torch.cuda.device_count():
            raise ValueError(f'--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s)')
    elif device.type == 'mps' and not torch.backends.mps.is_available():
        raise ValueError(f'--device {name}: MPS is not available here; use --device cpu')
    elif device.type not in ('cpu', 'cuda', 'mps'):
        raise ValueError(f'--device {name}: not supported (cpu, cuda, cuda:N, mps)')
    return device


def finite_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not a number: {text!r}') from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'must be a finite number, got {text}')
    return value


class Parser(argparse.ArgumentParser):
    def error(self, message):
        """One line, exit 2 (argparse's default prints the usage too)."""
        print(f'deblur_video: error: {message}', file=sys.stderr)
        sys.exit(2)


def parse_args(argv=None):
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument('-opt', required=True, help='a test option file of this project (VDD, EDVR, STFAN or SRN)')
    parser.add_argument('--input', action='append', required=True,
                        help='video file, frame folder or image file (repeatable)')
    parser.add_argument('--output', action='append', required=True,
                        help='video file (.mp4, ...), frame folder or (one-frame input) image file')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an earlier output of deblur_video (never anything else)')
    parser.add_argument('--checkpoint', help='stage checkpoint (default: path: pretrain_network_g of the option file)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    for name, kind in (('window', int), ('overlap', int), ('steps', int), ('guidance', finite_float), ('seed', int),
                       ('strength', finite_float), ('tile', int), ('tile_overlap', int)):
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
    if args.crf is not None and not 0 <= args.crf <= 51:
        raise ValueError(f'--crf must be in [0, 51], got {args.crf}')
    rank, world = int(os.environ.get('RANK', 0)), int(os.environ.get('WORLD_SIZE', 1))
    check_paths(args.input, args.output, args.overwrite, rank, world)
    opt = read_options(args.opt)
    overrides = {'window': args.window, 'overlap': args.overlap, 'steps': args.steps, 'seed': args.seed,
                 'guidance_scale': args.guidance, 'sampler': args.sampler, 'strength': args.strength,
                 'spacing': args.spacing, 'start_from': args.start_from, 'tile': args.tile,
                 'tile_overlap': args.tile_overlap}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if opt['model_type'] == 'VDDModel':
        check_sampling(dict(opt.get('sampling') or {}, **overrides))
    device = parse_device(args.device)
    sources = [VideoSource(src) for src in args.input]  # headers only: every input checked before the network
    for source, dst in zip(sources, args.output):
        if output_kind(dst) == 'image' and len(source) != 1:
            raise ValueError(f'--output {dst}: an image file holds one frame, {source.path} has {len(source)}; '
                             'give a folder or a video file')
    deblurrer = build_deblurrer(opt, args.checkpoint, device, overrides)
    for source, dst in list(zip(sources, args.output))[rank::world]:
        deblur_one(deblurrer, source, dst, args.crf, args.overwrite, device)


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


def deblur_one(deblurrer, source, dst, crf=None, overwrite=False, device=torch.device('cpu')):
    """Stream ``source`` through the method into ``dst``; prints a summary line."""
    start, (w, h), name = time.time(), source.size, osp.basename(source.path.rstrip('/'))
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    bar = progress(len(source), name)
    with torch.no_grad(), VideoSink(dst, source.fps, source.names, crf, overwrite) as sink:
        for out in deblurrer.run((f.unsqueeze(0) for f in source), len(source), name):
            sink.write(out[0])
            bar.update(1)
    bar.close()
    print(f'{source.path} -> {dst} ({deblurrer.name}): {len(source)} frames of {w}x{h}, '
          f'{(time.time() - start) / len(source):.2f} s/frame, {peak_memory(device)}')


def peak_memory(device):
    """The memory that bounds the run: the GPU's peak allocation on CUDA, else the process's peak RSS."""
    if device.type == 'cuda':
        return f'peak GPU memory {torch.cuda.max_memory_allocated(device) / 2 ** 30:.2f} GiB'
    import resource
    return f'peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20:.2f} GiB'


def main(argv=None):
    """Exit codes: 0 done, 2 a bad option, path, file or checkpoint, 130 Ctrl-C, 143 SIGTERM (one line on
    stderr; --debug: the traceback). Nothing is left under an output's name or its .partial name."""
    interrupts.install()
    try:
        args = parse_args(argv)
    except SystemExit as exit_:  # --help, or a one-line argument error
        return exit_.code
    try:
        run(args)
    except USER_ERRORS + interrupts.INTERRUPTS as err:
        if args.debug:
            raise
        code, message = interrupts.exit_code_and_message(err) if isinstance(err, interrupts.INTERRUPTS) else (2, err)
        print(f'deblur_video: error: {message}', file=sys.stderr)
        return code
    return 0


if __name__ == '__main__':
    sys.exit(main())
