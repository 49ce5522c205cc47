"""Real weight files against our modules: mapping reports, one-file conversion, the null-text embedding.

Used by ``scripts/convert_weights.py``. The network is built on the meta device from an option
file's ``network_g`` (no memory for weights); the files are memory-mapped where possible.
"""
import torch

from basicsr_vdd.archs.checkpoint_io import describe_mismatch, load_strict, read_state_dict
from basicsr_vdd.archs.tft2v_unet import tft2v_to_diffusers
from basicsr_vdd.archs.vdd_arch import VDDNet


def _without_pretrained(net_opt):
    opt = {k: (dict(v) if isinstance(v, dict) else v) for k, v in net_opt.items()}
    for part in ('unet', 'vae', 'clip_image'):
        if isinstance(opt.get(part), dict):
            opt[part].pop('pretrained', None)
    opt['null_text'] = None
    return opt


def _shapes(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _convert(kind, path, net, num_res_blocks):
    """``({prefix: {key: tensor}}, notes)`` for one file; prefix is the module path inside VDDNet."""
    state = read_state_dict(path)
    notes = [f'{path}: {len(state)} tensors, {sum(v.numel() for v in state.values()):,} values']
    if kind == 'unet':
        unknown = []
        parts = tft2v_to_diffusers(state, num_res_blocks, net.num_levels, unknown=unknown)
        if unknown:
            notes.append(f'  not TF-T2V UNet keys ({len(unknown)}): {unknown[:8]}')
        return {'unet': parts['unet'], 'image_proj': parts['image_proj']}, notes
    if kind == 'vae':
        from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint
        source = {k: v for k, v in state.items() if k.startswith('first_stage_model.')}
        notes.append(f'  first_stage_model.* keys: {len(source)} (other keys, e.g. the SD UNet, are ignored)')
        converted = convert_ldm_vae_checkpoint(source, net.vae.model.config) if source else {}
        if len(converted) != len(source):
            notes.append(f'  {len(source) - len(converted)} autoencoder keys have no place in the model')
        return {'vae.model': converted}, notes
    visual = {k[len('visual.'):]: v for k, v in state.items() if k.startswith('visual.')}
    notes.append(f'  visual.* keys: {len(visual)}; text tower keys: {len(state) - len(visual)} '
                 f'(used only for --null-text)')
    return {'clip_image.visual': visual}, notes


def check_files(net_opt, files, keep=False):
    """Report how ``files`` (``{'unet'|'vae'|'clip_image': path or None}``) map onto the network.

    Returns ``(report text, all matched, {our key: tensor} if keep)``.
    """
    with torch.device('meta'):
        net = VDDNet(**_without_pretrained(net_opt))
    num_res_blocks = net_opt['unet'].get('num_res_blocks', 2)
    lines, ok, converted = [], True, {}
    for kind, path in files.items():
        if not path:
            lines.append(f'{kind}: no file given')
            continue
        if kind == 'clip_image' and net.clip_image is None:
            lines.append(f'{kind}: the option file has no clip_image; {path} not checked')
            continue
        parts, notes = _convert(kind, path, net, num_res_blocks)
        lines += notes
        for prefix, state in parts.items():
            module = net.get_submodule(prefix)
            problems = describe_mismatch(f'{path} -> {prefix}', _shapes(module), state)
            count = sum(v.numel() for v in state.values())
            if problems:
                ok = False
                lines += problems
            else:
                lines.append(f'  -> {prefix}: {len(state)} tensors, {count:,} values, all keys and shapes match')
            if keep:
                converted.update({f'{prefix}.{k}': v for k, v in state.items()})
    lines.append('OK: every given file maps one to one' if ok else 'MISMATCH: see above')
    return '\n'.join(lines), ok, converted


@torch.no_grad()
def null_text_embedding(path, model='ViT-H-14'):
    """Empty-prompt context ``[1, 77, width]`` of open_clip's text tower, as TF-T2V computes it.

    TF-T2V's ``FrozenOpenCLIPTextVisualEmbedder(layer='penultimate')``: token + positional
    embedding, every transformer block but the last, then ``ln_final``.
    """
    import open_clip
    from open_clip.model import _build_text_tower

    cfg = open_clip.get_model_config(model)
    text = _build_text_tower(cfg['embed_dim'], cfg['text_cfg']).eval()
    state = read_state_dict(path)
    text_state = {k: v for k, v in state.items() if not k.startswith('visual.') and k != 'logit_scale'}
    load_strict(text, text_state, path)
    tokens = open_clip.tokenize([''], context_length=cfg['text_cfg'].get('context_length', 77))
    x = text.token_embedding(tokens) + text.positional_embedding
    for block in text.transformer.resblocks[:-1]:
        x = block(x, attn_mask=text.attn_mask)
    return text.ln_final(x).float()
