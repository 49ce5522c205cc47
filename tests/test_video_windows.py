"""Temporal windows, blending and padding used for videos of any length and size."""
import pytest
import torch

from basicsr_vdd.pipelines.video_windows import pad_to_multiple, run_windowed, temporal_windows, window_weights


def test_windows_cover_every_frame_with_the_requested_overlap():
    assert temporal_windows(16, 8, 2) == [(0, 8), (6, 14), (8, 16)]
    assert temporal_windows(5, 8, 2) == [(0, 5)]
    assert temporal_windows(8, 8, 0) == [(0, 8)]
    assert temporal_windows(9, 4, 0) == [(0, 4), (4, 8), (5, 9)]
    with pytest.raises(ValueError, match='overlap'):
        temporal_windows(10, 4, 4)


def test_weights_ramp_over_overlaps_and_sum_to_one_there():
    w0, w1 = window_weights(0, 8, 14, 2), window_weights(6, 14, 14, 2)
    assert w0.tolist() == pytest.approx([1, 1, 1, 1, 1, 1, 2 / 3, 1 / 3])
    assert w1.tolist() == pytest.approx([1 / 3, 2 / 3, 1, 1, 1, 1, 1, 1])
    assert (w0[6:] + w1[:2]).tolist() == pytest.approx([1, 1])


def test_windowed_identity_is_exact_and_blends_window_outputs():
    video = torch.randn(1, 3, 11, 4, 5)
    out = run_windowed(lambda clip, o: clip, video, size=4, overlap=2)
    torch.testing.assert_close(out, video)
    # each window returns its start index: overlapping frames get the weighted mean of both windows
    const = run_windowed(lambda clip, o: torch.full_like(clip, float(o[0])), torch.zeros(1, 1, 6, 1, 1), 4, 2)
    # windows (0,4), (2,6); frame 2: weights 1/3 (second window, ramp up) and 2/3 (first, ramp down)
    assert const[0, 0, :, 0, 0].tolist() == pytest.approx([0, 0, 2 / 3, 4 / 3, 2, 2])


def test_spatial_tiles_cover_every_pixel_and_blend_like_windows():
    video = torch.randn(2, 3, 5, 20, 13)
    offsets = []
    out = run_windowed(lambda clip, o: offsets.append(o) or clip * 2, video, size=3, overlap=1, tile=8, tile_overlap=4)
    torch.testing.assert_close(out, video * 2)
    # frames (0,3),(2,5); rows (0,8),(4,12),(8,16),(12,20); columns (0,8),(4,12),(5,13)
    assert len(offsets) == 2 * 4 * 3 and (2, 12, 5) in offsets
    # each tile returns its column offset: where tiles overlap the result is the ramp-weighted mean
    cols = run_windowed(lambda clip, o: torch.full_like(clip, float(o[2])), torch.zeros(1, 1, 1, 4, 12), 1, 0,
                        tile=8, tile_overlap=4)
    # column tiles (0,8), (4,12): columns 4..7 mix 0 and 4 with weights (4 - k)/5 and (k + 1)/5
    assert cols[0, 0, 0, 0].tolist() == pytest.approx([0, 0, 0, 0, 0.8, 1.6, 2.4, 3.2, 4, 4, 4, 4])
    with pytest.raises(ValueError, match='returned'):
        run_windowed(lambda clip, o: clip[..., :-1], video, 3, 1, tile=8, tile_overlap=4)


def test_pad_to_multiple_reflects_and_reports_the_original_size():
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
    y, size = pad_to_multiple(x, 8)
    assert y.shape == (2, 3, 8, 8) and size == (5, 7)
    torch.testing.assert_close(y[..., :5, :7], x)
    torch.testing.assert_close(y[..., 5, :7], x[..., 3, :])  # reflection of row 3 about row 4
    z, _ = pad_to_multiple(x, 1)
    assert z is x
