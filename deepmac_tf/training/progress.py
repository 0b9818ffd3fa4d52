"""Console progress and TensorBoard scalars of the training loop.

Every ``log_every_n_steps`` (and at the last step) one line:

  Step 200/1000 (20%) | Loss/total_loss 1.234 | Loss/object_center 0.80 ...
  | lr 1.00e-03 | 3.21 steps/s | ETA 0:04:09

and, with summaries on, scalars under ``model_dir/train``: every loss,
``learning_rate`` and ``steps_per_sec``; and, at the first report and every
``IMAGES_EVERY_N_REPORTS`` reports, ``train_input_images`` (as the OD API):
up to 3 images of the training batch with their groundtruth, mask-supervised
instances in green, box-only (unseen classes) in orange.
"""

import os
import time

from absl import logging
import tensorflow as tf

from deepmac_tf.evaluation.progress import format_eta
from deepmac_tf.training import train_step

TRAIN_SUMMARY_DIR = 'train'
TRAIN_IMAGES_TAG = 'train_input_images'
IMAGES_EVERY_N_REPORTS = 10
MAX_TRAIN_IMAGES = 3


# How long the last run's first step (tracing) took, kept in its model_dir.
FIRST_STEP_SECONDS_FILE = 'first_step_seconds.txt'


def tracing_message(model_dir):
  """The line logged before the first step: with an estimate once an
  earlier run in ``model_dir`` recorded how long its first step took."""
  path = os.path.join(model_dir, FIRST_STEP_SECONDS_FILE)
  try:
    with tf.io.gfile.GFile(path) as f:
      seconds = float(f.read().strip())
  except (tf.errors.OpError, OSError, ValueError):  # None recorded yet.
    return 'Tracing the training step (the first step takes longer)...'
  return (f'Tracing the training step (about {seconds:.0f} s, as the last '
          'run in this model_dir)...')


def record_first_step_seconds(model_dir, seconds):
  """Keeps the first step's duration for the next run's estimate."""
  with tf.io.gfile.GFile(os.path.join(model_dir, FIRST_STEP_SECONDS_FILE),
                         'w') as f:
    f.write(f'{seconds:.1f}\n')


def format_progress_line(step, total_steps, losses, learning_rate,
                         steps_per_sec):
  """The console line for one report (see module doc)."""
  parts = []
  if total_steps:
    percent = 100.0 * step / total_steps
    parts.append(f'Step {step}/{total_steps} ({percent:.0f}%)')
  else:
    parts.append(f'Step {step}')
  names = sorted(losses, key=lambda n: (n != train_step.TOTAL_LOSS, n))
  parts += [f'{name} {float(losses[name]):.4f}' for name in names]
  parts.append(f'lr {float(learning_rate):.3e}')
  parts.append(f'{steps_per_sec:.2f} steps/s')
  if total_steps and steps_per_sec > 0:
    parts.append(f'ETA {format_eta((total_steps - step) / steps_per_sec)}')
  return ' | '.join(parts)


class ProgressReporter:
  """Logs progress lines and writes training scalars."""

  def __init__(self, model_dir, total_steps, log_every_n_steps=100,
               record_summaries=True):
    self.total_steps = total_steps
    self.log_every_n_steps = max(int(log_every_n_steps), 1)
    self._writer = None
    if record_summaries:
      self._writer = tf.summary.create_file_writer(
          os.path.join(model_dir, TRAIN_SUMMARY_DIR))
    self._last_time = None
    self._last_step = None
    self._reports = 0

  def start(self, step):
    """Marks the start of timing at ``step`` (after restore / setup)."""
    self._last_time = time.perf_counter()
    self._last_step = step

  def should_report(self, step):
    return (step % self.log_every_n_steps == 0 or
            (self.total_steps and step >= self.total_steps))

  def report(self, step, losses, learning_rate):
    """Logs and records one report.

    Args:
      step: the global step after the last update.
      losses: {loss name: float} of the last step.
      learning_rate: the rate used at that step.

    Returns:
      The console line.
    """
    now = time.perf_counter()
    elapsed = now - self._last_time if self._last_time is not None else 0.0
    steps = step - (self._last_step if self._last_step is not None else step)
    steps_per_sec = steps / elapsed if elapsed > 0 and steps > 0 else 0.0
    self._last_time, self._last_step = now, step
    self._reports += 1
    line = format_progress_line(step, self.total_steps, losses, learning_rate,
                                steps_per_sec)
    logging.info('%s', line)
    if self._writer is not None:
      with self._writer.as_default(step=step):
        for name, value in losses.items():
          tf.summary.scalar(name, float(value))
        tf.summary.scalar('learning_rate', float(learning_rate))
        tf.summary.scalar('steps_per_sec', steps_per_sec)
      self._writer.flush()
    return line

  def wants_images(self):
    """True when the report just made should come with batch images."""
    return (self._writer is not None and
            (self._reports - 1) % IMAGES_EVERY_N_REPORTS == 0)

  def write_images(self, step, batch, category_index=None):
    """Writes ``train_input_images``: the batch's first images with their
    groundtruth (``preview.draw_batch``), one grid.

    Args:
      step: the global step.
      batch: {InputFields key: numpy array} of one replica's batch.
      category_index: optional ``{id: {'name': ...}}`` for labels.
    """
    from deepmac_tf.data import preview  # pylint: disable=g-import-not-at-top
    grid = preview.draw_batch(batch, category_index,
                              max_images=MAX_TRAIN_IMAGES,
                              columns=MAX_TRAIN_IMAGES, scale=1)
    with self._writer.as_default(step=step):
      tf.summary.image(TRAIN_IMAGES_TAG, grid[None])
    self._writer.flush()

  def close(self):
    if self._writer is not None:
      self._writer.close()
