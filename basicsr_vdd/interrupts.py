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


RECEIVED = []  # SIGTERMs since install(): one whose exception was swallowed on the way is still honoured


def _raise_terminated(signum, frame):
    RECEIVED.append(signum)
    raise Terminated(f'terminated by signal {signum}')


def install():
    """From now on SIGTERM raises :class:`Terminated` in the main thread and is recorded in
    :data:`RECEIVED` (cleared here)."""
    RECEIVED.clear()
    signal.signal(signal.SIGTERM, _raise_terminated)


def raise_if_received():
    """Raise :class:`Terminated` if a SIGTERM arrived whose exception something swallowed (e.g. a ``__del__``)."""
    if RECEIVED:
        raise Terminated(f'terminated by signal {RECEIVED[0]}')


def exit_code_and_message(err):
    """``(130, 'interrupted')`` for Ctrl-C, ``(143, 'terminated by signal 15')`` for SIGTERM."""
    if isinstance(err, Terminated):
        return 128 + signal.SIGTERM, str(err)
    return 130, 'interrupted'
