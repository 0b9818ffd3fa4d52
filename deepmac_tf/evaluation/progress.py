"""Console progress of an evaluation pass (``EvalProgress``) and the ETA
format shared with the training loop's progress lines."""

import datetime
import time

from absl import logging


def format_eta(seconds):
  """'H:MM:SS' for a number of seconds (rounded)."""
  return str(datetime.timedelta(seconds=int(round(max(seconds, 0.0)))))


class EvalProgress:
  """Console progress of an evaluation pass (it may take minutes).

  ``update(done)`` logs at most one line per ``every_seconds``:

    Eval at step 1200: 120/500 images (24%) | 3.20 images/s | ETA 0:01:58

  (without ``total``: ``Eval at step 1200: 120 images | 3.20 images/s``).
  """

  def __init__(self, total=None, title='Eval', every_seconds=10.0,
               clock=time.perf_counter):
    self.total = total or None
    self.title = title
    self.every_seconds = float(every_seconds)
    self._clock = clock
    self._start = clock()
    self._last_line = self._start

  def line(self, done):
    elapsed = max(self._clock() - self._start, 1e-9)
    rate = done / elapsed
    if self.total:
      text = (f'{self.title}: {done}/{self.total} images '
              f'({100.0 * done / self.total:.0f}%) | {rate:.2f} images/s')
      if rate > 0:
        text += f' | ETA {format_eta((self.total - done) / rate)}'
      return text
    return f'{self.title}: {done} images | {rate:.2f} images/s'

  def update(self, done):
    """Logs a line when ``every_seconds`` passed; returns it (or None)."""
    now = self._clock()
    if now - self._last_line < self.every_seconds:
      return None
    self._last_line = now
    text = self.line(done)
    logging.info('%s', text)
    return text
