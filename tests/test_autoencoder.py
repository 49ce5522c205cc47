"""The frame autoencoders on videos: chunking over frames and tiling of large frames."""
import torch

from basicsr_vdd.archs.autoencoder import KLAutoencoder, PixelUnshuffleAutoencoder


def tiny_kl(**kw):
    torch.manual_seed(0)
    return KLAutoencoder(ch=32, ch_mult=(1, 2), num_res_blocks=1, **kw).eval()


def test_chunking_over_frames_changes_nothing():
    vae = tiny_kl(chunk_frames=0)
    video = torch.rand(2, 3, 5, 32, 32) * 2 - 1
    with torch.no_grad():
        z_all, x_all = vae.encode(video), vae.decode(vae.encode(video))
        vae.chunk_frames = 2
        z_chunk, x_chunk = vae.encode(video), vae.decode(vae.encode(video))
    assert z_all.shape == (2, 4, 5, 16, 16) and x_all.shape == video.shape
    torch.testing.assert_close(z_chunk, z_all, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(x_chunk, x_all, rtol=1e-5, atol=1e-6)


def test_tiling_applies_only_to_frames_larger_than_the_tile():
    plain, tiled = tiny_kl(), tiny_kl(tiling=True, tile_size=32)
    tiled.load_state_dict(plain.state_dict())
    small, large = torch.rand(1, 3, 2, 32, 32) * 2 - 1, torch.rand(1, 3, 2, 96, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(tiled.encode(small), plain.encode(small))  # fits in one tile
        z_plain, z_tiled = plain.encode(large), tiled.encode(large)
        x_tiled = tiled.decode(z_tiled)
    assert z_tiled.shape == z_plain.shape == (1, 4, 2, 48, 32) and x_tiled.shape == large.shape
    assert not torch.allclose(z_tiled, z_plain)  # the tiled path ran (tiles are normalised separately)
    assert tiny_kl(tiling=True).model.tile_sample_min_size == 512  # default: SD frames are not split


def test_pixel_unshuffle_is_lossless():
    vae = PixelUnshuffleAutoencoder(factor=4)
    video = torch.rand(1, 3, 3, 16, 24)
    z = vae.encode(video)
    assert z.shape == (1, 48, 3, 4, 6)
    assert torch.equal(vae.decode(z), video)
