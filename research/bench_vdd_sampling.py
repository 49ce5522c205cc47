"""Quality and speed of VDD's sampler settings on a test split: one BasicSR test run per setting.

Each setting is the test option file with ``sampling:`` keys overridden (``--force_yml``), run
through ``basicsr_vdd/test.py``; the table (PSNR/SSIM/ST-LPIPS mean over videos and over frames,
seconds per frame) goes to stdout and to ``--out`` (markdown). ``--videos`` / ``--max-frames``
restrict the test split (slow settings such as DDIM 50 + guidance on one video).

    python research/bench_vdd_sampling.py -opt options/demo/test_vdd_synth.yml \
        --setting sampler=dpmpp_2m,steps=10 --setting sampler=ddim,steps=50,guidance_scale=2 \
        [--videos 001_china --max-frames 8] --out docs/research_log.md
"""
import argparse
import os
import os.path as osp
import time
import zlib

ROOT = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))
os.environ.setdefault('HF_HUB_OFFLINE', '1')

from vdd_demo import runner  # noqa: E402
from vdd_demo.report import DEFAULT_METRICS, input_summary, latest_summary  # noqa: E402
from basicsr_vdd.pipelines.vdd_diffusion import SAMPLER_OPTIONS  # noqa: E402

KEYS = SAMPLER_OPTIONS + ('window', 'overlap', 'tile', 'tile_overlap', 'seed')


def parse_setting(text):
    """``'sampler=ddim,steps=50'`` -> ``[('sampler', 'ddim'), ('steps', '50')]`` (keys checked)."""
    pairs = [item.split('=', 1) for item in text.split(',') if item]
    bad = [p[0] for p in pairs if len(p) != 2 or p[0] not in KEYS]
    if bad:
        raise SystemExit(f'--setting {text!r}: unknown or malformed keys {bad}; use key=value with keys {KEYS}')
    return pairs


def run_setting(option, pairs, tag, checkpoint=None, videos=None, max_frames=None):
    name = f'bench_{runner.repo_options(option)["name"]}_{tag}'
    extra = ['--force_yml', f'name={name}', 'val:save_img=false'] + [f'sampling:{k}={v}' for k, v in pairs]
    extra += [f'path:pretrain_network_g={checkpoint}'] if checkpoint else []
    extra += [f'datasets:test:videos={videos!r}'] if videos else []
    extra += [f'datasets:test:max_frames={max_frames}'] if max_frames else []
    runner.run('test', option, extra)
    return latest_summary(osp.join(ROOT, 'results', name))


METRICS = ('psnr', 'ssim', 'stlpips')


def row(label, summary):
    m = summary['metrics']
    cells = [f'{m[k]["per_video_mean"]:.2f} / {m[k]["all_frame_mean"]:.2f}' if k == 'psnr'
             else f'{m[k]["per_video_mean"]:.4f} / {m[k]["all_frame_mean"]:.4f}' for k in METRICS]
    spf = summary.get('seconds_per_frame')
    return f'| {label} | {" | ".join(cells)} | {"" if spf is None else f"{spf:.2f}"} |'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-opt', required=True, help='a VDD test option file')
    parser.add_argument('--setting', action='append', required=True, help='key=value[,key=value...] of sampling:')
    parser.add_argument('--checkpoint', help='test this checkpoint instead of the option file\'s')
    parser.add_argument('--videos', nargs='*', help='only these test videos')
    parser.add_argument('--max-frames', type=int, help='only the first frames of each test video')
    parser.add_argument('--out', help='write the markdown table here')
    args = parser.parse_args()
    settings = [parse_setting(s) for s in args.setting]
    data = runner.repo_options(args.opt)['datasets']['test']
    blurry = input_summary(osp.join(ROOT, data['dataroot']), data['lq_folder'], data['gt_folder'],
                           metrics={k: DEFAULT_METRICS[k] for k in METRICS}, videos=args.videos or data.get('videos'),
                           max_frames=args.max_frames)
    lines = ['| setting | PSNR (videos / frames) | SSIM (videos / frames) | ST-LPIPS (videos / frames) | s/frame |',
             '|---|---|---|---|---|', row('blurry input', blurry)]
    start = time.time()
    for text, pairs in zip(args.setting, settings):
        tag = f'{zlib.crc32((text + str(args.videos) + str(args.max_frames)).encode()):08x}'
        summary = run_setting(args.opt, pairs, tag, args.checkpoint, args.videos, args.max_frames)
        lines.append(row(', '.join(f'{k}={v}' for k, v in pairs), summary))
        print('\n'.join(lines), flush=True)
    table = '\n'.join(lines)
    checkpoint = args.checkpoint or runner.repo_options(args.opt)['path']['pretrain_network_g']
    subset = (f' videos {args.videos}' if args.videos else '') + (f' first {args.max_frames} frames'
                                                                   if args.max_frames else '')
    header = (f'Sampler settings of `{args.opt}` on `{data["dataroot"]}`{subset} (checkpoint `{checkpoint}`), '
              f'{len(settings)} runs in {(time.time() - start) / 60:.1f} min on this machine.\n\n')
    print('\n' + header + table)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(header + table + '\n')


if __name__ == '__main__':
    main()
