"""STFAN and SRN through BasicSR's train/test pipelines with our datasets (tiny widths; only YAML differs)."""
import pytest

from conftest import train_then_test


@pytest.mark.slow
@pytest.mark.parametrize('method, width', [('stfan', {'channels': [8, 8, 16]}), ('srn', {'channels': [8, 8, 16]})])
def test_train_then_test_whole_videos(method, width, tiny_gopro, tmp_path):
    train_then_test(method, width, tiny_gopro, tmp_path, f'{method}_tiny', train_data={'num_frame': 3})
