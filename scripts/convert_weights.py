"""Check how real weight files map onto our modules; write them as one safetensors file; compute the null text.

    # report (reads the files; builds the network from the option file on the meta device, no RAM for weights)
    python scripts/convert_weights.py --check --opt options/vdd_stage1.yml \
        --tft2v pretrained/tft2v_t2v_non_ema_512000.pth \
        --sd pretrained/v2-1_512-ema-pruned.ckpt \
        --open-clip pretrained/open_clip_pytorch_model.bin

    # the same, and write pretrained/vdd_init.safetensors in our layout (unet.*, image_proj.*, vae.*, clip_image.*)
    python scripts/convert_weights.py ... --out pretrained/vdd_init.safetensors

    # the empty-prompt embedding of open_clip ViT-H-14's text tower (TF-T2V: penultimate layer + ln_final)
    python scripts/convert_weights.py --open-clip pretrained/open_clip_pytorch_model.bin \
        --null-text pretrained/null_text_vit_h14.safetensors
"""
import argparse
import sys

import torch
from basicsr_vdd.archs.weights import check_files, null_text_embedding
from basicsr_vdd.file_io import read_options


def network_options(path):
    opt = dict(read_options(path, flag='--opt')['network_g'])
    opt.pop('type', None)
    return opt


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--opt', default='options/vdd_stage1.yml', help='option file whose network_g is checked')
    parser.add_argument('--tft2v', help='TF-T2V UNet checkpoint (tft2v_t2v_non_ema_512000.pth)')
    parser.add_argument('--sd', help='Stable Diffusion 2.1 checkpoint with first_stage_model.* (v2-1_512-ema-pruned.ckpt)')
    parser.add_argument('--open-clip', help='open_clip ViT-H-14 weights (open_clip_pytorch_model.bin)')
    parser.add_argument('--check', action='store_true', help='report the mapping of every given file')
    parser.add_argument('--out', help='write the converted weights as one safetensors file in our layout')
    parser.add_argument('--null-text', help='write the empty-prompt embedding [1, 77, 1024] (needs --open-clip)')
    args = parser.parse_args(argv)

    if args.check or args.out:
        files = {'unet': args.tft2v, 'vae': args.sd, 'clip_image': args.open_clip}
        report, ok, converted = check_files(network_options(args.opt), files, keep=bool(args.out))
        print(report)
        if not ok:
            return 1
        if args.out:
            from safetensors.torch import save_file
            save_file({k: v.contiguous() for k, v in converted.items()}, args.out)
            print(f'wrote {len(converted)} tensors to {args.out}')
    if args.null_text:
        if not args.open_clip:
            parser.error('--null-text needs --open-clip')
        from safetensors.torch import save_file
        emb = null_text_embedding(args.open_clip)
        save_file({'null_text': emb.contiguous()}, args.null_text)
        print(f'wrote the empty-prompt embedding {tuple(emb.shape)} to {args.null_text}')
    if not (args.check or args.out or args.null_text):
        parser.error('nothing to do: give --check, --out or --null-text')
    return 0


if __name__ == '__main__':
    torch.set_grad_enabled(False)
    sys.exit(main())
