"""Store a trained demo checkpoint under demo_checkpoints/ with float16 tensors (loads into float32 nets).

    python scripts/export_demo_checkpoint.py experiments/demo_EDVR_SynthGoPro/models/net_g_latest.pth \
        demo_checkpoints/edvr_synth.pth
    python scripts/export_demo_checkpoint.py --ema-only experiments/demo_VDD_stage2_SynthGoPro/models/net_g_latest.pth \
        demo_checkpoints/vdd_synth.pth   # keep params_ema (what the test loads), drop the raw params
"""
import argparse

from vdd_demo.checkpoint_export import export_half

if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src')
    parser.add_argument('dst')
    parser.add_argument('--ema-only', action='store_true', help="drop 'params', keep 'params_ema'")
    args = parser.parse_args()
    export_half(args.src, args.dst, drop=('params',) if args.ema_only else ())
    print(f'wrote {args.dst}')
