"""Running the training scripts as subprocesses and checking what they left:
the pieces shared by ``scripts/soak_resume.py`` (kill-and-resume soak) and
``scripts/multi_worker_kill_restart.py`` (a worker killed mid-run).

* ``ScriptRun``: a script in a subprocess, its stderr lines collected by a
  thread (``text``, ``wait_for``), killed or awaited with a timeout;
* ``verify_checkpoints(model_dir)``: every listed checkpoint loads, ``ckpt-N``
  holds step N and optimizer iterations N, all weights are finite, the
  latest is the last listed, no partial checkpoint files;
* ``resume_check(text, latest)``: the run logged its resume from step
  ``latest`` and its first progress line is step ``latest + 1``;
* ``verify_export(output)`` / ``export_digest(output)``: an export folder
  is whole (every part present, the SavedModel's variables readable and
  finite, the metadata names its checkpoint step) / what its files hold;
* ``free_ports`` / ``tf_config``: a two-worker cluster on 127.0.0.1.
"""

import glob
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


class ScriptRun:
  """A subprocess whose stderr lines are collected by a thread."""

  def __init__(self, args, env=None):
    """``args``: the script path and its flags (run with this Python)."""
    env = dict(os.environ if env is None else env)
    env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
    self.started = time.time()
    self.process = subprocess.Popen(
        [sys.executable] + list(args), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    self.lines = []
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()

  def _read(self):
    for line in self.process.stderr:
      self.lines.append(line.rstrip('\n'))

  def text(self):
    return '\n'.join(self.lines)

  def wait_for(self, pattern, deadline):
    """The first match of regex ``pattern`` in the log, waiting until
    ``deadline`` (time.time()) or the process ends; None if not seen."""
    compiled = re.compile(pattern)
    while True:
      match = compiled.search(self.text())
      if match or time.time() > deadline or self.process.poll() is not None:
        return match or compiled.search(self.text())
      time.sleep(0.05)

  def kill(self):
    self.process.send_signal(signal.SIGKILL)
    self.process.wait()
    self._reader.join(timeout=10)

  def wait(self, timeout):
    """The exit status; raises ``subprocess.TimeoutExpired`` after
    ``timeout`` seconds (the process is left running)."""
    self.process.wait(timeout=timeout)
    self._reader.join(timeout=10)
    return self.process.returncode


def verify_checkpoints(model_dir):
  """Verifies every listed checkpoint (see module doc).

  Returns:
    The latest step, or None when model_dir has no checkpoint.

  Raises:
    AssertionError: naming the checkpoint and what is wrong.
  """
  # pylint: disable=g-import-not-at-top
  import numpy as np
  import tensorflow as tf
  # pylint: enable=g-import-not-at-top
  state = tf.train.get_checkpoint_state(model_dir)
  if state is None:
    return None
  latest = None
  for path in state.all_model_checkpoint_paths:
    reader = tf.train.load_checkpoint(path)
    step = int(reader.get_tensor('step/.ATTRIBUTES/VARIABLE_VALUE'))
    iterations = int(reader.get_tensor(
        'optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE'))
    number = int(path.rsplit('-', 1)[1])
    if not step == number == iterations:
      raise AssertionError(f'{path}: step {step}, optimizer iterations '
                           f'{iterations}')
    for key, dtype in reader.get_variable_to_dtype_map().items():
      if dtype.is_floating and not np.all(np.isfinite(reader.get_tensor(key))):
        raise AssertionError(f'{path}: {key} is not finite')
    latest = step
  if not state.model_checkpoint_path.endswith(f'ckpt-{latest}'):
    raise AssertionError(f'latest {state.model_checkpoint_path} is not the '
                         f'last listed checkpoint (step {latest})')
  for index in glob.glob(os.path.join(model_dir, 'ckpt-*.index')):
    tf.train.load_checkpoint(index[:-len('.index')])  # no partial files
  return latest


def resume_check(text, latest):
  """What a run's log ``text`` says about resuming from step ``latest``.

  Returns:
    'fresh start' (latest None), 'killed before it logged its resume', or
    'resumed at step K[, continued at step K+1]'.

  Raises:
    AssertionError: the first progress line after the resume is not K+1.
  """
  if latest is None:
    return 'fresh start'
  if 'Resumed from' not in text or f'(step {latest})' not in text:
    return 'killed before it logged its resume'
  match = re.search(r'Step (\d+)/', text)
  if match and int(match.group(1)) != latest + 1:
    raise AssertionError(f'resumed at step {latest} but the first progress '
                         f'line is step {match.group(1)}')
  return f'resumed at step {latest}' + (
      f', continued at step {latest + 1}' if match else '')


# What an export folder must hold (export/exporter.py writes them).
EXPORT_PARTS = ('saved_model/saved_model.pb', 'saved_model/variables/'
                'variables.index', 'saved_model/assets.extra/'
                'export_metadata.json', 'pipeline.config',
                'checkpoint/checkpoint')


def verify_export(output):
  """Verifies that the export folder ``output`` is whole.

  Returns:
    The checkpoint step recorded in the export's metadata.

  Raises:
    AssertionError: naming the missing or unreadable part.
  """
  # pylint: disable=g-import-not-at-top
  import numpy as np
  import tensorflow as tf
  # pylint: enable=g-import-not-at-top
  for part in EXPORT_PARTS:
    if not os.path.isfile(os.path.join(output, part)):
      raise AssertionError(f'{output}: {part} is missing')
  variables = os.path.join(output, 'saved_model', 'variables', 'variables')
  try:
    reader = tf.train.load_checkpoint(variables)
    for key, dtype in reader.get_variable_to_dtype_map().items():
      if dtype.is_floating and not np.all(np.isfinite(reader.get_tensor(key))):
        raise AssertionError(f'{variables}: {key} is not finite')
  except (tf.errors.OpError, IndexError, ValueError) as e:
    # A torn data file: IndexError "Read less bytes than requested".
    raise AssertionError(f'{variables}: unreadable ({e})') from e
  with open(os.path.join(output, EXPORT_PARTS[2]), encoding='utf-8') as f:
    return json.load(f)['checkpoint_step']


def export_digest(output):
  """sha256 of every file under ``output`` (relative path and bytes)."""
  digest = hashlib.sha256()
  for root, dirs, files in os.walk(output):
    dirs.sort()
    for name in sorted(files):
      path = os.path.join(root, name)
      digest.update(os.path.relpath(path, output).encode() + b'\0')
      with open(path, 'rb') as f:
        digest.update(f.read())
  return digest.hexdigest()


def free_ports(count):
  """``count`` free TCP ports on 127.0.0.1."""
  sockets = [socket.socket() for _ in range(count)]
  for s in sockets:
    s.bind(('127.0.0.1', 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def tf_config(workers, index):
  """The ``TF_CONFIG`` value of worker ``index`` of ``workers`` (host:port
  list) for MultiWorkerMirroredStrategy."""
  return json.dumps({'cluster': {'worker': list(workers)},
                     'task': {'type': 'worker', 'index': index}})
