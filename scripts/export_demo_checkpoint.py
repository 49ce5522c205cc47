"""Store a trained demo checkpoint under demo_checkpoints/ with float16 tensors (loads into float32 nets).

    python scripts/export_demo_checkpoint.py experiments/demo_EDVR_SynthGoPro/models/net_g_latest.pth \
        demo_checkpoints/edvr_synth.pth
"""
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), osp.pardir)))

from basicsr_vdd.runner import export_half  # noqa: E402

if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    export_half(sys.argv[1], sys.argv[2])
    print(f'wrote {sys.argv[2]}')
