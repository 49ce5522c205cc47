"""basicsr_vdd: video deblurring with video diffusion models, as a BasicSR plugin.

``import basicsr_vdd`` applies the compatibility layer (``compat.py``) and registers every arch,
dataset, loss, metric and model of the package in BasicSR's registries.
"""
from . import compat

compat.apply()

from . import archs, data, losses, metrics, models  # noqa: E402,F401  (registration by import)

__version__ = '0.1.0'
