"""Ctrl-C and SIGTERM for the user commands (``train.py``, ``test.py``, ``scripts/deblur_video.py``).

SIGTERM raises :class:`Terminated`, a ``BaseException`` like ``KeyboardInterrupt``: no
``except Exception`` in BasicSR, torch or this package can swallow it, so the command's own
handler always sees it, cleans up what it was writing and exits with the shell's code
(130 for Ctrl-C, 143 for SIGTERM).
"""
import contextlib
import os
import signal
import threading

class Terminated(BaseException):
    """SIGTERM arrived (not an ``Exception``: broad handlers let it through)."""


INTERRUPTS = (KeyboardInterrupt, Terminated)
SIGNALS = (signal.SIGINT, signal.SIGTERM)  # what the commands handle: Ctrl-C and SIGTERM


RECEIVED = []  # SIGTERMs since install(): one whose exception was swallowed on the way is still honoured


def _raise_terminated(signum, frame):
    RECEIVED.append(signum)
    raise Terminated(f'terminated by signal {signum}')


def install():
    """From now on SIGTERM raises :class:`Terminated` in the main thread and is recorded in
    :data:`RECEIVED` (cleared here)."""
    RECEIVED.clear()
    signal.signal(signal.SIGTERM, _raise_terminated)


@contextlib.contextmanager
def deferred():
    """Hold Ctrl-C and SIGTERM for the statements inside and deliver them, through the handlers in place
    before, when the block ends: for steps that must not be split by an exception, such as creating a
    temporary output and recording that it exists. In other threads (where Python never delivers
    signals) the block runs as is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = []
    previous = {}
    try:
        for signum in SIGNALS:
            previous[signum] = signal.signal(signum, lambda number, frame: held.append(number))
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in held:
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), signum)


def raise_if_received():
    """Raise :class:`Terminated` if a SIGTERM arrived whose exception something swallowed (e.g. a ``__del__``)."""
    if RECEIVED:
        raise Terminated(f'terminated by signal {RECEIVED[0]}')


def exit_code_and_message(err):
    """``(130, 'interrupted')`` for Ctrl-C, ``(143, 'terminated by signal 15')`` for SIGTERM."""
    if isinstance(err, Terminated):
        return 128 + signal.SIGTERM, str(err)
    return 130, 'interrupted'
