"""scripts/deblur_video.py interrupted: Ctrl-C and SIGTERM exit 130 / 143 with one line and leave nothing under
the output's name or its .partial name; what kill -9 leaves is named by the next run, not a bare [Errno 17]."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO, load_options, tiny_vdd_test_options, user_frames, write_options

sys.path.insert(0, osp.join(REPO, 'scripts'))
import deblur_video  # noqa: E402
from basicsr_vdd import interrupts  # noqa: E402
from basicsr_vdd.pipelines.inference import VideoSink  # noqa: E402


def slow_options(tmp_path):
    """The tiny VDD with 100 sampling steps: seconds per window, so a signal lands with most work left."""
    opt = load_options(tiny_vdd_test_options(tmp_path))
    opt['sampling'].update(steps=100, window=4, overlap=1)
    return write_options(opt, tmp_path / 'slow.yml')


def start(opt, src, out):
    """The script in a fresh process; Ctrl-C raises KeyboardInterrupt there even if this shell ignores SIGINT."""
    script = osp.join(REPO, 'scripts', 'deblur_video.py')
    argv = [script, '-opt', opt, '--input', str(src), '--output', str(out), '--device', 'cpu']
    code = ('import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); '
            f'sys.argv = {argv!r}; runpy.run_path({script!r}, run_name="__main__")')
    return subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='1'))


def signal_once_writing(proc, partial, sig, timeout=300):
    """Wait until ``partial`` (the temporary output) exists, then send ``sig``; returns (code, stderr)."""
    deadline = time.time() + timeout
    while not osp.exists(partial):
        assert proc.poll() is None, f'ended before writing: {proc.stderr.read()[-3000:]}'
        assert time.time() < deadline, 'no temporary output appeared'
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.fixture
def command_handlers():
    """This process handles SIGINT and SIGTERM as the user commands do; the old handlers come back after."""
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupts.install()
    yield
    for s, handler in old.items():
        signal.signal(s, handler)


@pytest.mark.parametrize('name, creates', [('out.mp4', 'close'), ('out', 'mkdir')])
@pytest.mark.parametrize('sig, error', [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, interrupts.Terminated)])
def test_signal_just_after_the_temporary_output_appears_leaves_nothing(tmp_path, monkeypatch, command_handlers,
                                                                       name, creates, sig, error):
    """The signal lands in VideoSink.__enter__ right after it made ``<output>.partial[.mp4]``, before the
    with block (so before __exit__) exists: what the signal test above hit once under load."""
    real, raised = getattr(os, creates), []

    def create_then_signal(*args, **kwargs):
        result = real(*args, **kwargs)
        if not raised:
            raised.append(sig)
            signal.raise_signal(sig)
        return result
    monkeypatch.setattr(os, creates, create_then_signal)
    body = []
    with pytest.raises(error):
        with VideoSink(str(tmp_path / name), 24):
            body.append('ran')
    assert raised == [sig] and body == [] and os.listdir(tmp_path) == []


@pytest.mark.parametrize('sig, error', [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, interrupts.Terminated)])
def test_a_second_signal_during_the_removal_of_the_partial_output_leaves_nothing(tmp_path, monkeypatch, command_handlers,
                                                                                sig, error):
    """Ctrl-C stops a run writing frames; the user's second Ctrl-C (or a SIGTERM) lands while
    ``<output>.partial`` is being removed: the removal finishes, then the second signal is raised."""
    import shutil
    real, raised = shutil.rmtree, []

    def signal_then_remove(path, *args, **kwargs):
        raised.append(sig)
        signal.raise_signal(sig)
        real(path, *args, **kwargs)
    monkeypatch.setattr(shutil, 'rmtree', signal_then_remove)
    with pytest.raises(error):
        with VideoSink(str(tmp_path / 'out'), 24) as sink:
            sink.write(torch.rand(3, 8, 8))
            raise KeyboardInterrupt  # the first Ctrl-C
    assert raised == [sig] and os.listdir(tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize('sig, code, message, name', [
    (signal.SIGTERM, 143, 'deblur_video: error: terminated by signal 15', 'out'),
    (signal.SIGINT, 130, 'deblur_video: error: interrupted', 'out.mp4')])
def test_signal_exits_with_one_line_and_nothing_partial(tmp_path, capsys, sig, code, message, name):
    opt = slow_options(tmp_path)
    clip = user_frames(tmp_path / 'clip', n=12)
    out = tmp_path / name
    partial = str(out) + ('.partial' if name == 'out' else '.partial.mp4')
    rc, err = signal_once_writing(start(opt, clip, out), partial, sig)
    assert rc == code, err[-3000:]
    assert err.strip().splitlines()[-1] == message and 'Traceback' not in err
    assert not out.exists() and not osp.exists(partial)
    assert sorted(os.listdir(tmp_path)) == ['clip', 'slow.yml', 'test.yml', 'vdd.pth']
    # the next run just works
    assert deblur_video.main(['-opt', opt, '--input', str(clip), '--output', str(out), '--steps', '2']) == 0
    assert out.exists() and not osp.exists(partial)


@pytest.mark.slow
def test_leftover_of_kill9_is_named_by_the_next_run(tmp_path, capsys):
    opt = slow_options(tmp_path)
    clip = user_frames(tmp_path / 'clip', n=12)
    out = tmp_path / 'out'
    rc, _ = signal_once_writing(start(opt, clip, out), str(out) + '.partial', signal.SIGKILL)
    assert rc == -signal.SIGKILL and not out.exists()
    capsys.readouterr()
    assert deblur_video.main(['-opt', opt, '--input', str(clip), '--output', str(out), '--steps', '2']) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f'deblur_video: error: {out}.partial: exists: left by an interrupted run, or another '
                   f'deblur_video is writing {out} now; delete it if none is')
    assert not out.exists()
