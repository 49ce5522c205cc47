"""Imports every `*_metric.py` module here so that its classes register (BasicSR's scandir pattern)."""
import importlib
from os import path as osp

from basicsr.utils import scandir

_folder = osp.dirname(osp.abspath(__file__))
_modules = [
    importlib.import_module(f'{__name__}.{osp.splitext(name)[0]}')
    for name in sorted(scandir(_folder)) if name.endswith('_metric.py')
]
