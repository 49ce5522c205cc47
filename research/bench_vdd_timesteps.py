"""Where a VDD sampling trajectory breaks: PSNR of the clean estimate x̂0 from x_t at chosen timesteps.

For each test video (its first ``--frames`` frames) the true target ``x0`` (sharp latents or the
scaled residual) is diffused to ``x_t = q_sample(x0, t, noise)`` with seeded offset noise, the
network predicts ``v`` and ``x̂0 = x0_from_v(x_t, t, v)`` is decoded and scored against the ground
truth (BasicSR PSNR/SSIM on RGB uint8, no crop), in the option file's windows and tiles. Also
given per t, for the residual target: a reference that uses no network, the shrunk noisy input
``x̂0_ref = sqrt(ᾱ) x_t / (ᾱ + (1 - ᾱ)(1 + offset²))`` (the MMSE estimate for a unit-variance,
zero-mean residual; 0 = the blurry input at t = 999). A trained denoiser's x̂0 improves as t falls
and beats the reference at every t; where it does not, the low-noise steps a multi-step sampler
ends on are untrained.

    python research/bench_vdd_timesteps.py -opt options/demo/test_vdd_synth.yml \
        --timesteps 999,900,700,500,300,100,20 --out docs/vdd_timesteps_synth.md
"""
import argparse
import os
import os.path as osp
import time

import numpy as np
import torch

ROOT = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))
os.environ.setdefault('HF_HUB_OFFLINE', '1')

import basicsr_vdd  # noqa: E402,F401  (compat shim before the first basicsr import)
from basicsr.metrics import calculate_psnr, calculate_ssim  # noqa: E402
from basicsr.utils import tensor2img  # noqa: E402

from basicsr_vdd.data.paired_video_dataset import PairedVideoTestDataset  # noqa: E402
from basicsr_vdd.file_io import read_options  # noqa: E402
from basicsr_vdd.diffusion.schedule import offset_noise  # noqa: E402
from basicsr_vdd.pipelines.inference import load_vdd  # noqa: E402
from basicsr_vdd.pipelines.vdd_diffusion import from_model_video, to_model_video  # noqa: E402
from basicsr_vdd.pipelines.video_windows import pad_to_multiple, run_windowed  # noqa: E402


@torch.no_grad()
def x0_estimates(net, diffusion, blur, sharp, t, generator):
    """Decoded ``x̂0`` and the no-network reference, ``[B, 3, F, H, W]`` each (in [-1, 1]; the
    reference is None for the sharp target), from the true ``x_t`` at timestep ``t`` (an int)."""
    x0 = diffusion.encode_target(net, sharp, blur)
    tt = torch.full((x0.shape[0],), t, dtype=torch.long, device=x0.device)
    noise = offset_noise(tuple(x0.shape), diffusion.offset_noise, generator, x0.device, x0.dtype)
    x_t = diffusion.schedule.q_sample(x0, tt, noise)
    f = blur.shape[2]
    v = net(x_t, tt, concat=net.encode_blur(blur), image_embedding=net.encode_image(blur[:, :, f // 2]),
            image_keep=blur.new_ones(blur.shape[0]))
    z_blur = net.vae.encode(blur)
    out = diffusion.decode_target(net, diffusion.schedule.x0_from_v(x_t, tt, v), z_blur)
    if diffusion.target != 'residual':
        return out, None
    ac = float(diffusion.schedule.alphas_cumprod[t])
    shrink = ac ** 0.5 / (ac + (1 - ac) * (1 + diffusion.offset_noise ** 2))
    return out, diffusion.decode_target(net, shrink * x_t, z_blur)


def score(frames, gt):
    """Mean PSNR and SSIM of ``frames`` vs ``gt`` ``[N, 3, H, W]`` in [0, 1] (BasicSR, uint8 RGB)."""
    p, s = [], []
    for a, b in zip(frames, gt):
        img, img2 = tensor2img([a]), tensor2img([b])
        p.append(calculate_psnr(img, img2, 0, test_y_channel=False))
        s.append(calculate_ssim(img, img2, 0, test_y_channel=False))
    return float(np.mean(p)), float(np.mean(s))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-opt', required=True, help='a VDD test option file')
    parser.add_argument('--checkpoint', help='instead of the option file\'s pretrain_network_g')
    parser.add_argument('--timesteps', default='999,900,700,500,300,100,20')
    parser.add_argument('--frames', type=int, default=8, help='first frames of each test video')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', help='append the markdown table to this file')
    args = parser.parse_args()
    steps = [int(t) for t in args.timesteps.split(',')]
    net, diffusion, sampling = load_vdd(args.opt, args.checkpoint)
    data = dict(read_options(args.opt)['datasets']['test'], phase='test', mode='video', max_frames=args.frames)
    dataset = PairedVideoTestDataset(data)
    window, overlap = int(sampling.get('window', 16)), int(sampling.get('overlap', 4))
    tile, tile_overlap = int(sampling.get('tile') or 0), int(sampling.get('tile_overlap') or 0)
    results = {t: [] for t in steps}
    references = {t: [] for t in steps}
    blurry = []
    start = time.time()
    for i in range(len(dataset)):
        sample = dataset[i]
        lq, gt = sample['lq'], sample['gt']
        blurry.append(score(lq, gt))
        blur, (h, w) = pad_to_multiple(to_model_video(lq[None]), net.size_multiple)
        sharp, _ = pad_to_multiple(to_model_video(gt[None]), net.size_multiple)
        for t in steps:
            generator = torch.Generator().manual_seed(args.seed * 1000 + t + 7919 * i)

            def fn(clip, offset):
                t0, y0, x0 = offset
                ref = sharp[:, :, t0:t0 + clip.shape[2], y0:y0 + clip.shape[3], x0:x0 + clip.shape[4]]
                est, reference = x0_estimates(net, diffusion, clip, ref, t, generator)
                return est if reference is None else torch.cat([est, reference], 1)

            out = run_windowed(fn, blur, window, overlap, tile, tile_overlap)[..., :h, :w]
            results[t].append(score(from_model_video(out[:, :3])[0], gt))
            if out.shape[1] == 6:
                references[t].append(score(from_model_video(out[:, 3:])[0], gt))
        print(f'{sample["folder"]}: done ({time.time() - start:.0f} s)', flush=True)
    mean = lambda rows: tuple(float(np.mean([r[k] for r in rows])) for k in (0, 1))  # noqa: E731
    ac = diffusion.schedule.alphas_cumprod
    lines = ['| t | SNR ᾱ / (1 − ᾱ) | x̂0 PSNR | x̂0 SSIM | reference (no network) PSNR | SSIM |',
             '|---|---|---|---|---|---|', '| blurry input | | {:.2f} | {:.4f} | | |'.format(*mean(blurry))]
    for t in steps:
        snr = float(ac[t] / (1 - ac[t])) if t < len(ac) - 1 else 0.0
        ref = '{:.2f} | {:.4f}'.format(*mean(references[t])) if references[t] else 'n/a | n/a'
        lines.append(f'| {t} | {snr:.3g} | ' + '{:.2f} | {:.4f} | '.format(*mean(results[t])) + ref + ' |')
    header = (f'x̂0 from the true x_t, `{args.opt}`, checkpoint `{args.checkpoint or "(option file)"}`, '
              f'{len(dataset)} videos × first {args.frames} frames, windows {window}/{overlap}, tiles '
              f'{tile}/{tile_overlap}, seed {args.seed}; {(time.time() - start) / 60:.1f} min.\n\n')
    table = header + '\n'.join(lines)
    print('\n' + table)
    if args.out:
        with open(args.out, 'a') as f:
            f.write(table + '\n\n')


if __name__ == '__main__':
    main()
