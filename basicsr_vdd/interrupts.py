"""Ctrl-C and SIGTERM for the user commands (``train.py``, ``test.py``, ``scripts/deblur_video.py``).

SIGTERM raises :class:`Terminated`, a ``BaseException`` like ``KeyboardInterrupt``: no
``except Exception`` in BasicSR, torch or this package can swallow it, so the command's own
handler always sees it, cleans up what it was writing and exits with the shell's code
(130 for Ctrl-C, 143 for SIGTERM).
"""
import signal

class Terminated(BaseException):
    """SIGTERM arrived (not an ``Exception``: broad handlers let it through)."""


INTERRUPTS = (KeyboardInterrupt, Terminated)


def _raise_terminated(signum, frame):
    raise Terminated(f'terminated by signal {signum}')


def install():
    """From now on SIGTERM raises :class:`Terminated` in the main thread (idempotent)."""
    signal.signal(signal.SIGTERM, _raise_terminated)


def exit_code_and_message(err):
    """``(130, 'interrupted')`` for Ctrl-C, ``(143, 'terminated by signal 15')`` for SIGTERM."""
    if isinstance(err, Terminated):
        return 128 + signal.SIGTERM, str(err)
    return 130, 'interrupted'
