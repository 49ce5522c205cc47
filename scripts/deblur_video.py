"""Deblur your own blurry videos with a trained VDD.

    python scripts/deblur_video.py -opt options/demo/test_vdd_synth.yml --input blurry.mp4 --output sharp.mp4
    python scripts/deblur_video.py -opt options/test_vdd_gopro.yml --input frames_dir/ --output out_dir/ \
        [--checkpoint experiments/VDD_stage2_GoPro/models/net_g_latest.pth] [--device cuda] \
        [--window 16 --overlap 4 --steps 50 --guidance 2.0 --sampler ddim]

Several inputs: give --input and --output several times (pairs, in order). On many GPUs, start one
process per GPU (``torchrun --nproc_per_node=N scripts/deblur_video.py ...``): process r deblurs
inputs r, r + N, ... on cuda:r.
"""
import argparse
import os
import os.path as osp
import sys
import time

import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), osp.pardir)))
os.environ.setdefault('HF_HUB_OFFLINE', '1')

from basicsr_vdd.diffusion.samplers import SAMPLERS, SPACINGS  # noqa: E402
from basicsr_vdd.inference import load_vdd, read_video, write_video  # noqa: E402
from basicsr_vdd.vdd_diffusion import STARTS  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-opt', required=True, help='a VDD test option file (network_g, diffusion, sampling, path)')
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
    args = parser.parse_args(argv)
    if len(args.input) != len(args.output):
        parser.error('give one --output per --input')

    rank, world = int(os.environ.get('RANK', 0)), int(os.environ.get('WORLD_SIZE', 1))
    device = torch.device(f'cuda:{int(os.environ.get("LOCAL_RANK", 0))}' if args.device == 'cuda' and world > 1
                          else args.device)
    net, diffusion, sampling = load_vdd(args.opt, args.checkpoint, device)
    overrides = {'window': args.window, 'overlap': args.overlap, 'steps': args.steps, 'seed': args.seed,
                 'guidance_scale': args.guidance, 'sampler': args.sampler, 'strength': args.strength,
                 'spacing': args.spacing, 'start_from': args.start_from, 'tile': args.tile, 'tile_overlap': args.tile_overlap}
    sampling.update({k: v for k, v in overrides.items() if v is not None})
    for src, dst in list(zip(args.input, args.output))[rank::world]:
        frames, fps = read_video(src)
        start = time.time()
        out = diffusion.deblur_video(net, frames.unsqueeze(0).to(device), sampling, osp.basename(src.rstrip('/')))
        write_video(out[0].cpu(), dst, fps)
        print(f'{src} -> {dst}: {frames.shape[0]} frames of {frames.shape[3]}x{frames.shape[2]}, '
              f'{(time.time() - start) / frames.shape[0]:.2f} s/frame')
    return 0


if __name__ == '__main__':
    sys.exit(main())
