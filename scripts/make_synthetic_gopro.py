"""Generate the synthetic GoPro-style video deblurring set (the project's embedded default data).

    python scripts/make_synthetic_gopro.py --out datasets/SynthGoPro [--seed 0] [--num-train 60 --num-test 4
        --train-frames 40 --test-frames 16 --size 256] [--splits train test] [--force]

Writes ``<out>/{train,test}/<video>/{blur,sharp}/%06d.png`` and ``<out>/meta.json`` (the full recipe) and
prints the input PSNR/SSIM (blur vs sharp) per video and per split. All logic lives in the package
``vdd_demo.synthetic``; see its docstring for the physics. It needs neither torch nor BasicSR.
"""
import argparse
import sys

from vdd_demo import synthetic


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out', required=True, help='output folder (must not exist or be empty unless --force)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--num-train', type=int, default=60, help='number of train videos')
    p.add_argument('--num-test', type=int, default=4, help='number of test videos')
    p.add_argument('--train-frames', type=int, default=40, help='frames per train video')
    p.add_argument('--test-frames', type=int, default=16, help='frames per test video')
    p.add_argument('--size', type=int, default=256, help='square output frame size (pixels)')
    p.add_argument('--subframes', type=int, nargs=2, default=(7, 21), metavar=('MIN', 'MAX'),
                   help='odd range of sharp sub-frames averaged per blurry frame (chosen per video)')
    p.add_argument('--max-step', type=float, default=1.5,
                   help='max displacement (px) between consecutive sub-frames (no ghosting)')
    p.add_argument('--splits', nargs='+', choices=('train', 'test'), default=('train', 'test'),
                   help='which splits to write (the test split alone is all a test of trained models needs)')
    p.add_argument('--force', action='store_true', help='replace a non-empty --out')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    options = synthetic.Options(subframes=tuple(args.subframes), max_step=args.max_step)
    try:
        synthetic.generate_dataset(args.out, seed=args.seed, num_train=args.num_train, num_test=args.num_test,
                                   train_frames=args.train_frames, test_frames=args.test_frames, size=args.size,
                                   force=args.force, options=options, splits=args.splits)
    except (FileExistsError, synthetic.SourceMissingError) as e:
        sys.exit(f'error: {e}')


if __name__ == '__main__':
    main()
