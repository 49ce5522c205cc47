"""Train with BasicSR's own pipeline: ``python basicsr_vdd/train.py -opt X.yml [--auto_resume]
[--debug] [--launcher pytorch] [--force_yml key:sub=value ...]``.

Option checks, one-line errors and clean-up of failed runs: :mod:`basicsr_vdd.cli`.
"""
import os.path as osp
import sys

ROOT = osp.abspath(osp.join(__file__, osp.pardir, osp.pardir))
# run as a script, this folder is sys.path[0]: put the repository root there instead
sys.path[:] = [p for p in sys.path if osp.abspath(p or '.') != osp.dirname(osp.abspath(__file__))]
sys.path.insert(0, ROOT)

import basicsr_vdd  # noqa: E402,F401  (compat layer + registration)
from basicsr_vdd.cli import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main('train', ROOT))
