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


def time_calls(fn, warmup_steps, steps):
  """Runs ``fn()`` warmup_steps + steps times.

  Returns:
    dict: ``median_ms`` / ``min_ms`` / ``max_ms`` of the timed calls and
    ``first_call_ms`` (tracing included), ``steps``, ``warmup_steps``.
  """
  times = []
  first = None
  for i in range(max(warmup_steps, 1) + steps):
    start = time.perf_counter()
    _block(fn())
    elapsed = 1000.0 * (time.perf_counter() - start)
    if i == 0:
      first = elapsed
    if i >= max(warmup_steps, 1):
      times.append(elapsed)
  return {'median_ms': round(float(np.median(times)), 3),
          'min_ms': round(float(np.min(times)), 3),
          'max_ms': round(float(np.max(times)), 3),
          'first_call_ms': round(first, 3), 'steps': steps,
          'warmup_steps': max(warmup_steps, 1)}


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
