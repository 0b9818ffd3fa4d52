"""Wall-clock timing and memory figures for ``scripts/benchmark.py``."""

import resource
import sys
import time

import numpy as np
import tensorflow as tf


def _block(result):
  """Waits for every tensor of a (nested) result (copies it to host)."""
  tf.nest.map_structure(
      lambda t: t.numpy() if hasattr(t, 'numpy') else t, result)


def time_calls(fn, warmup_steps, steps, describe=None):
  """Runs ``fn()`` warmup_steps + steps times (at least one warm-up call,
  which traces).

  Args:
    fn: the call to time; its (nested) tensor result is fetched each time.
    warmup_steps / steps: untimed and timed calls.
    describe: optional ``result -> dict`` merged into the figure (e.g. how
      many detections the last call made).

  Returns:
    dict: ``median_ms`` / ``min_ms`` / ``max_ms`` of the timed calls and
    ``first_call_ms`` (tracing included), ``steps``, ``warmup_steps``.
  """
  return time_interleaved({'call': fn}, warmup_steps, steps,
                          describe)['call']


def time_interleaved(fns, warmup_steps, steps, describe=None):
  """Times several calls in turn (a, b, a, b, ...), so that a machine whose
  speed drifts (other load, clocks) slows each of them alike.

  Args:
    fns: {name: fn}; each ``fn()`` result is fetched each time.
    warmup_steps / steps: untimed and timed rounds (at least one warm-up
      round, which traces).
    describe: optional ``result -> dict`` merged into each figure.

  Returns:
    {name: figure} with the keys of ``time_calls``.
  """
  times = {name: [] for name in fns}
  first, last = {}, {}
  for i in range(max(warmup_steps, 1) + steps):
    for name, fn in fns.items():
      start = time.perf_counter()
      last[name] = fn()
      _block(last[name])
      elapsed = 1000.0 * (time.perf_counter() - start)
      if i == 0:
        first[name] = elapsed
      if i >= max(warmup_steps, 1):
        times[name].append(elapsed)
  figures = {}
  for name, values in times.items():
    figures[name] = {'median_ms': round(float(np.median(values)), 3),
                     'min_ms': round(float(np.min(values)), 3),
                     'max_ms': round(float(np.max(values)), 3),
                     'first_call_ms': round(first[name], 3), 'steps': steps,
                     'warmup_steps': max(warmup_steps, 1)}
    if describe is not None:
      figures[name].update(describe(last[name]))
  return figures


def detections_described(result):
  """{'num_detections': [...], 'max_detections': K} of a detection dict."""
  figure = {}
  if 'num_detections' in result:
    figure['num_detections'] = [
        int(n) for n in np.reshape(np.asarray(result['num_detections']), -1)]
  if 'detection_boxes' in result:
    figure['max_detections'] = int(result['detection_boxes'].shape[1])
  return figure


def peak_rss_mib():
  """Peak resident set size of this process so far, in MiB."""
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  # Linux reports KiB, macOS bytes.
  return round(peak / (1024.0 * 1024.0 if sys.platform == 'darwin' else
                       1024.0), 1)


def current_rss_mib():
  """Current resident set size in MiB (Linux /proc), else None."""
  try:
    with open('/proc/self/statm', encoding='ascii') as f:
      pages = int(f.read().split()[1])
  except (OSError, ValueError, IndexError):
    return None
  return round(pages * resource.getpagesize() / (1024.0 * 1024.0), 1)
