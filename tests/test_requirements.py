"""Every requirement earns its place: something in basicsr_vdd/, vdd_demo/, scripts/, research/ or tests/ imports it."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULE_OF = {'opencv-python': 'cv2', 'scikit-image': 'skimage', 'scikit-learn': 'sklearn', 'scikit-video': 'skvideo',
             'pyyaml': 'yaml', 'open_clip_torch': 'open_clip', 'stlpips-pytorch': 'stlpips_pytorch',
             'ipython': 'IPython'}


def requirement_names():
    names = []
    for line in (ROOT / 'requirements.txt').read_text().splitlines():
        line = line.split('#')[0].strip()
        if line:
            names.append(re.split(r'[=<>!~\[ ]', line)[0])
    return names


def test_requirements_file_lists_packages():
    assert {'torch', 'basicsr', 'diffusers', 'einops'} <= set(requirement_names())
    assert 'mmengine' not in requirement_names()


@pytest.mark.parametrize('name', requirement_names())
def test_every_requirement_is_used(name):
    module = MODULE_OF.get(name, name.replace('-', '_'))
    # a plain import, or the module named as a string (importlib.import_module / find_spec)
    pattern = re.compile(rf"^\s*(import|from) {module}\b|['\"]{module}['\"]", re.M)
    sources = [p for d in ('basicsr_vdd', 'vdd_demo', 'scripts', 'research', 'tests') for p in (ROOT / d).rglob('*.py')
               if p.name != 'test_requirements.py']
    users = [p.relative_to(ROOT) for p in sources if pattern.search(p.read_text())]
    assert users, f'{name} (module {module}) is in requirements.txt but nothing imports it'
