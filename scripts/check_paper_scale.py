"""Train and sample the paper-size VDD for a few steps and measure it (random weights where the files are absent).

    python scripts/check_paper_scale.py -opt options/vdd_stage2.yml [--device cuda] [--frames 16 --size 256]
        [--steps 3] [--stages 1 2] [--autocast bf16|fp32] [--no-checkpointing] [--frozen-dtype bf16|fp32]
        [--sample-autocast bf16|fp32] [--sample-steps 50]

Builds ``network_g`` of the option file through the real ``VDDModel`` (the pretrained TF-T2V UNet,
SD 2.1 VAE and ViT-H-14 files where they exist, random weights otherwise: speed and memory do not
depend on the values), runs ``--steps`` training steps of each stage with the option file's
autocast and gradient checkpointing, then one temporal window of the option file's sampler (DDIM 50
+ guidance), and writes a JSON and a Markdown table (``--out``, default ``docs/paper_scale_<device>``).
Memory levers: ``--autocast`` (training), ``--no-checkpointing``, ``--frozen-dtype`` (the parts a stage
neither trains nor saves held in bf16: ``train: frozen_dtype``), ``--sample-autocast`` (``sampling: autocast``).
"""
import argparse
import copy
import gc
import json
import os
import os.path as osp
import sys
import tempfile
import time

import torch

import basicsr_vdd  # noqa: F401  (registration)
from basicsr_vdd.file_io import read_options
from basicsr_vdd.models.vdd_model import VDDModel

ROOT = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))


def model_options(opt, stage, device, args, work):
    """In-process ``VDDModel`` options for ``stage`` from the option file's dict ``opt`` and the levers in ``args``."""
    net = copy.deepcopy(opt['network_g'])
    missing = []
    for part in ('unet', 'vae', 'clip_image'):
        path = net.get(part, {}).get('pretrained')
        if path and not osp.isfile(osp.join(ROOT, path)) and not osp.isfile(path):
            net[part]['pretrained'] = None
            missing.append(path)
    if net.get('null_text') and not osp.isfile(net['null_text']):
        missing.append(net['null_text'])
        net['null_text'] = None
    train = dict(copy.deepcopy(opt['train']), stage=stage, gradient_checkpointing=not args.no_checkpointing,
                 autocast=none_if_fp32(args.autocast), frozen_dtype=none_if_fp32(args.frozen_dtype),
                 ema_decay=opt['train'].get('ema_decay', 0))
    sampling = dict(copy.deepcopy(opt.get('sampling', {})), window=args.frames, overlap=0, tile=0,
                    autocast=none_if_fp32(args.sample_autocast))
    if args.sample_steps:
        sampling['steps'] = args.sample_steps
    out = dict(name='paper_scale', model_type='VDDModel', num_gpu=1 if device.type == 'cuda' else 0,
               manual_seed=0, network_g=net, diffusion=copy.deepcopy(opt.get('diffusion', {})), sampling=sampling,
               train=train,
               is_train=True, dist=False, rank=0, world_size=1, root_path=work, auto_resume=False,
               logger={'print_freq': 1},
               path={'pretrain_network_g': None, 'experiments_root': work, 'models': work,
                     'training_states': work, 'log': work, 'visualization': work})
    return out, missing


def none_if_fp32(name):
    return None if name == 'fp32' else name


def peak_memory(device):
    """Peak device memory in GiB since the last :func:`reset_peak` (CUDA: allocated by tensors; CPU: the
    process's peak resident set, VmHWM)."""
    if device.type == 'cuda':
        return torch.cuda.max_memory_allocated(device) / 2 ** 30
    with open('/proc/self/status') as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith('VmHWM:'))
    return kib / 2 ** 20


def peak_reserved(device):
    """CUDA: peak memory the caching allocator reserved in GiB (what the GPU must have); CPU: None."""
    return round(torch.cuda.max_memory_reserved(device) / 2 ** 30, 2) if device.type == 'cuda' else None


def reset_peak(device):
    """Start a new peak: CUDA's peak statistics, or Linux's VmHWM (``clear_refs`` 5)."""
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    else:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')


def resident_memory(device):
    """Memory held now in GiB (CUDA: allocated by tensors; CPU: the process's resident set)."""
    if device.type == 'cuda':
        return torch.cuda.memory_allocated(device) / 2 ** 30
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 30


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def release(device):
    """Free what the previous stage held (reference cycles through the checkpointing closures need a
    collection) so that the next stage is measured alone."""
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()


def available_memory(device):
    """GiB that can still be allocated: free device memory (CUDA) or MemAvailable (CPU)."""
    if device.type == 'cuda':
        return torch.cuda.mem_get_info(device)[0] / 2 ** 30
    with open('/proc/meminfo') as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith('MemAvailable:'))
    return kib / 2 ** 20


class OutOfMemory(Exception):
    """A stage does not fit the device's memory."""


def check_training_fits(model, device):
    """Before the first step: the gradients and AdamW moments of the trained parameters (12 bytes each,
    fp32) must fit what is available; on CPU running out means the kernel kills the process."""
    need = sum(p.numel() for p in model.trainable_parameters()) * 12 / 2 ** 30
    free = available_memory(device)
    if need > free:
        raise OutOfMemory(f'stage {model.stage}: its gradients and AdamW moments need about {need:.1f} GiB more, '
                          f'{free:.1f} GiB is available on {device}')


def measure_stage(file_opt, args, stage, device, work):
    opt, missing = model_options(file_opt, stage, device, args, work)
    reset_peak(device)
    start = time.time()
    model = VDDModel(opt)
    built = time.time() - start
    held, build_peak = resident_memory(device), peak_memory(device)
    reset_peak(device)
    params = sum(p.numel() for p in model.bare.parameters())
    trainable = sum(p.numel() for p in model.trainable_parameters())
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(1, args.frames, 3, args.size, args.size, generator=g)
    data = {'lq': (gt + 0.05 * torch.randn(gt.shape, generator=g)).clamp(0, 1), 'gt': gt}
    times = []
    check_training_fits(model, device)
    for it in range(1, args.steps + 1):
        model.feed_data(data)
        sync(device)
        t = time.time()
        try:
            model.optimize_parameters(it)
        except torch.OutOfMemoryError as err:
            raise OutOfMemory(f'stage {stage}: out of memory in training step {it} on {device} '
                              f'({str(err).splitlines()[0]})') from None
        sync(device)
        times.append(time.time() - t)
    row = {'stage': stage, 'parameters': params, 'trainable': trainable, 'build_s': round(built, 1),
           'step_s': [round(x, 2) for x in times],
           'step_s_steady': round(sum(times[1:]) / max(len(times) - 1, 1), 2) if len(times) > 1 else round(times[0], 2),
           'loss': round(float(model.log_dict['l_total']), 4), 'built_gib': round(held, 2),
           'build_peak_gib': round(build_peak, 2), 'peak_gib': round(peak_memory(device), 2),
           'peak_reserved_gib': peak_reserved(device),
           'missing_files': missing}
    return model, row


def measure_sampling(model, args, device):
    calls = []
    hook = model.bare.unet.register_forward_pre_hook(lambda m, a, kw: calls.append(int(a[0].shape[0])),
                                                     with_kwargs=True)
    reset_peak(device)
    g = torch.Generator().manual_seed(1)
    model.lq = torch.rand(1, args.frames, 3, args.size, args.size, generator=g).to(device)
    model.folder = 'check'
    sync(device)
    t = time.time()
    model.test()
    sync(device)
    elapsed = time.time() - t
    hook.remove()
    s = model.sampling
    return {'sampler': s.get('sampler'), 'steps': s.get('steps'), 'guidance_scale': s.get('guidance_scale'),
            'autocast': s.get('autocast') or 'fp32',
            'window_s': round(elapsed, 1), 'frame_s': round(elapsed / args.frames, 2), 'unet_calls': len(calls),
            'unet_batch': sorted(set(calls)), 'guidance_batched': bool(calls) and max(calls) > 1,
            'peak_gib': round(peak_memory(device), 2), 'peak_reserved_gib': peak_reserved(device),
            'output_finite': bool(torch.isfinite(model.output).all())}


def markdown(result):
    a = result['args']
    lines = [f"### {result['device_name']} ({result['device']}): {a['frames']} frames x {a['size']}², autocast {a['autocast']}, "
             f"gradient checkpointing {'off' if a['no_checkpointing'] else 'on'}, frozen parts {a['frozen_dtype']}", '',
             f"`{result['command']}`", '',
             '| stage | parameters | trainable | s/step (steps) | loss | memory after build (GiB) | peak while building (GiB) | peak while training (GiB) |',
             '|---|---|---|---|---|---|---|---|']
    for r in result['stages']:
        lines.append(f"| {r['stage']} | {r['parameters']:,} | {r['trainable']:,} | {r['step_s_steady']} "
                     f"({', '.join(map(str, r['step_s']))}) | {r['loss']} | {r['built_gib']} | {r['build_peak_gib']} "
                     f"| {r['peak_gib']} |")
    s = result.get('sampling')
    if s:
        lines += ['', '| sampler | steps | guidance | autocast | UNet calls / window | batched guidance | s / window | s / frame | peak memory (GiB) |',
                  '|---|---|---|---|---|---|---|---|---|',
                  f"| {s['sampler']} | {s['steps']} | {s['guidance_scale']} | {s['autocast']} | {s['unet_calls']} | "
                  f"{s['guidance_batched']} (UNet batch {s['unet_batch']}) | {s['window_s']} | {s['frame_s']} | {s['peak_gib']} |"]
    missing = sorted({m for r in result['stages'] for m in r['missing_files']})
    if missing:
        lines += ['', f"Random weights for absent files: {', '.join(missing)}."]
    if result.get('error'):
        lines.append(f"Stopped: {result['error']}.")
    lines.append(f"Peak memory: {'CUDA max_memory_allocated (reserved by the caching allocator in the JSON)' if result['device'].startswith('cuda') else 'process peak RSS (all of it, including Python and the frozen parts)'}.")
    return '\n'.join(lines) + '\n'


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('-opt', required=True)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--frames', type=int, default=16)
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--steps', type=int, default=3, help='training steps per stage')
    parser.add_argument('--stages', type=int, nargs='+', default=[1, 2], choices=[1, 2])
    parser.add_argument('--autocast', choices=['bf16', 'fp16', 'fp32'], default=None,
                        help='default: the option file (train: autocast)')
    parser.add_argument('--no-checkpointing', action='store_true')
    parser.add_argument('--frozen-dtype', choices=['bf16', 'fp16', 'fp32'], default=None,
                        help='dtype of the parts a stage neither trains nor saves (default: the option file, '
                             'train: frozen_dtype)')
    parser.add_argument('--sample-autocast', choices=['bf16', 'fp16', 'fp32'], default=None,
                        help='default: the option file (sampling: autocast)')
    parser.add_argument('--sample-steps', type=int, default=None, help='default: the option file (sampling: steps)')
    parser.add_argument('--no-sampling', action='store_true')
    parser.add_argument('--out', default=None, help='output prefix for .json and .md (default docs/paper_scale_<device>)')
    args = parser.parse_args(argv)
    if args.steps < 1 or args.frames < 1 or args.size % 64:
        parser.error('--steps and --frames must be >= 1 and --size a multiple of 64')
    device = torch.device(args.device)
    if device.type == 'cuda':
        device = torch.device('cuda', torch.cuda.current_device() if device.index is None else device.index)
        torch.cuda.set_device(device)  # VDDModel puts the network on the current CUDA device
        torch.backends.cudnn.benchmark = True  # as BasicSR's train_pipeline sets it
    file_opt = read_options(args.opt)
    train_opt, sampling_opt = file_opt.get('train') or {}, file_opt.get('sampling') or {}
    args.autocast = args.autocast or train_opt.get('autocast') or 'fp32'
    args.frozen_dtype = args.frozen_dtype or train_opt.get('frozen_dtype') or 'fp32'
    args.sample_autocast = args.sample_autocast or sampling_opt.get('autocast') or 'fp32'
    result = {'device': str(device), 'device_name': torch.cuda.get_device_name(device) if device.type == 'cuda' else
              'CPU',
              'command': 'python scripts/check_paper_scale.py ' + ' '.join(argv if argv is not None else sys.argv[1:]),
              'args': vars(args), 'torch': torch.__version__, 'threads': torch.get_num_threads(), 'stages': []}
    with tempfile.TemporaryDirectory() as work:
        model = None
        try:
            for stage in args.stages:
                model = None
                release(device)
                model, row = measure_stage(file_opt, args, stage, device, work)
                result['stages'].append(row)
                print(json.dumps(row), flush=True)
            if not args.no_sampling:
                result['sampling'] = measure_sampling(model, args, device)
                print(json.dumps(result['sampling']), flush=True)
        except OutOfMemory as err:
            result['error'] = str(err)
    out = args.out or osp.join(ROOT, 'docs', f'paper_scale_{device.type}')
    with open(out + '.json', 'w') as f:
        json.dump(result, f, indent=1)
    with open(out + '.md', 'w') as f:
        f.write(markdown(result))
    print(markdown(result))
    if result.get('error'):
        print(f'check_paper_scale: error: {result["error"]} (what was measured before is in {out}.json)',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
