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
  times = []
  first = result = None
  for i in range(max(warmup_steps, 1) + steps):
    start = time.perf_counter()
    result = fn()
    _block(result)
    elapsed = 1000.0 * (time.perf_counter() - start)
    if i == 0:
      first = elapsed
    if i >= max(warmup_steps, 1):
      times.append(elapsed)
  figure = {'median_ms': round(float(np.median(times)), 3),
            'min_ms': round(float(np.min(times)), 3),
            'max_ms': round(float(np.max(times)), 3),
            'first_call_ms': round(first, 3), 'steps': steps,
            'warmup_steps': max(warmup_steps, 1)}
  if describe is not None:
    figure.update(describe(result))
  return figure


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
