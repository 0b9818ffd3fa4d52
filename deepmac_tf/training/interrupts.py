"""SIGTERM behaves like Ctrl-C while training runs.

Preemption, ``timeout`` and job schedulers stop a process with SIGTERM;
Python's default is to die at once, losing every step since the last
checkpoint. Inside ``sigterm_interrupts()`` a SIGTERM raises
``Interrupted`` (a ``KeyboardInterrupt``) in the main thread, so the training
loop's interrupt path saves the current step, and ``cli.run`` exits with
status 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM).
"""

import contextlib
import signal
import threading


class Interrupted(KeyboardInterrupt):
  """Raised in the main thread by a signal (``signum``)."""

  def __init__(self, signum):
    super().__init__(signal.Signals(signum).name)
    self.signum = int(signum)


def exit_status(error):
  """Shell exit status for an interrupt: 128 + signal number."""
  return 128 + getattr(error, 'signum', int(signal.SIGINT))


def signal_name(error):
  """'SIGTERM', 'SIGINT', ... for an interrupt."""
  return signal.Signals(getattr(error, 'signum', int(signal.SIGINT))).name


@contextlib.contextmanager
def sigterm_interrupts():
  """Turns SIGTERM into ``Interrupted`` inside the block (main thread only;
  elsewhere nothing changes)."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return

  def handler(signum, frame):
    del frame
    raise Interrupted(signum)

  previous = signal.signal(signal.SIGTERM, handler)
  try:
    yield
  finally:
    signal.signal(signal.SIGTERM, previous)
