"""Each vdd_demo module imports on its own in a fresh interpreter (the BasicSR shim comes first where
BasicSR is used), and the package itself imports nothing heavy."""
import subprocess
import sys

import pytest

MODULES = ['vdd_demo.images', 'vdd_demo.synthetic', 'vdd_demo.figures', 'vdd_demo.report', 'vdd_demo.runner',
           'vdd_demo.checkpoint_export']


@pytest.mark.slow
@pytest.mark.parametrize('module', MODULES)
def test_module_imports_alone(module):
    proc = subprocess.run([sys.executable, '-c', f'import {module}'], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr


def test_package_imports_nothing_heavy():
    code = 'import sys, vdd_demo; print(sorted(m for m in ("torch", "basicsr", "basicsr_vdd", "cv2") if m in sys.modules))'
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == '[]', proc.stdout + proc.stderr
