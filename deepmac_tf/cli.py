"""Shared plumbing for the command-line scripts in ``scripts/``.

Import this module before TensorFlow (scripts import TF lazily, after flag
parsing, so ``--help`` answers at once).

* Quiet by default: TF's C++ log lines (INFO / WARNING; on a machine with no
  NVIDIA device also the E-level "failed call to cuInit" line) and TF's
  Python warnings are hidden. ``--verbose`` (or a ``TF_CPP_MIN_LOG_LEVEL``
  set by the user) keeps them.
* ``--help`` (and ``-?``, ``--helpshort``, ``--helpfull``) exit with status 0;
  absl's own help flags exit with status 1, which breaks shell pipelines and
  tests that treat non-zero as failure.
* A ``DeepMacError`` (bad config, label map, data) ends the program with one
  ``ERROR: <message>`` line on stderr and status 1, never a traceback; so do
  environment failures (permission denied, disk full, out of memory).
* Ctrl-C / SIGTERM: one line, status 130 / 143 (the training loop saves its
  step first).
"""

import errno
import logging as std_logging
import os
import sys

from absl import app
from absl import flags

from deepmac_tf.errors import DeepMacError

_HELP_FLAGS = ('help', '?', 'helpshort', 'helpfull', 'helpxml')
_VERBOSE_FLAG = 'verbose'


def _asks_for(argv, names):
  return any(arg.startswith('-') and
             arg.lstrip('-').split('=')[0] in names for arg in argv[1:])


def _asks_for_help(argv):
  return _asks_for(argv, _HELP_FLAGS)


def _has_nvidia_device():
  if not sys.platform.startswith('linux'):
    return True  # Cannot tell cheaply; keep TF's CUDA errors.
  return os.path.exists('/dev/nvidiactl') or os.path.exists('/dev/nvidia0')


def quiet_tensorflow_logs(argv=None):
  """Sets ``TF_CPP_MIN_LOG_LEVEL`` before TensorFlow is imported.

  Level 2 (errors only), or 3 on a machine without NVIDIA devices, where
  the only C++ error is the meaningless cuInit failure. Left alone when the
  user set it or passed ``--verbose``.
  """
  argv = sys.argv if argv is None else argv
  if _asks_for(argv, (_VERBOSE_FLAG,)) or 'TF_CPP_MIN_LOG_LEVEL' in os.environ:
    return
  os.environ['TF_CPP_MIN_LOG_LEVEL'] = '2' if _has_nvidia_device() else '3'


quiet_tensorflow_logs()
flags.DEFINE_bool(_VERBOSE_FLAG, False,
                  "Show TensorFlow's own log lines (hidden by default).")


def parse_flags(argv):
  """absl flag parsing in which asking for help exits with status 0."""
  try:
    return app.parse_flags_with_usage(argv)
  except SystemExit as e:
    if e.code == 1 and _asks_for_help(argv):
      sys.exit(0)
    raise


def _environment_message(error):
  """One line for an OS / TF environment failure, or None for a bug."""
  if isinstance(error, OSError):
    where = f': {error.filename}' if error.filename else ''
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
      return f'permission denied{where} ({error.strerror}).'
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
      return f'no space left on device{where}.'
    if error.errno is not None:
      return f'{error.strerror or error}{where}.'
    return None
  tf = sys.modules.get('tensorflow')
  if tf is None:
    return None
  message = getattr(error, 'message', '').strip().split('\n')[0]
  if isinstance(error, tf.errors.PermissionDeniedError):
    return f'permission denied: {message}'
  if 'No space left on device' in getattr(error, 'message', ''):
    return f'no space left on device: {message}'
  if isinstance(error, tf.errors.ResourceExhaustedError):
    return (f'out of memory: {message[:200]} (lower train_config.batch_size '
            'or the image size).')
  return None


def run(main):
  """Runs an absl ``main(argv)`` with the conventions above."""

  def _main(argv):
    if not flags.FLAGS[_VERBOSE_FLAG].value:
      std_logging.getLogger('tensorflow').setLevel(std_logging.ERROR)
    try:
      return main(argv)
    except DeepMacError as e:
      print(f'ERROR: {e}', file=sys.stderr)
      sys.exit(1)
    except KeyboardInterrupt as e:
      from deepmac_tf.training import interrupts  # pylint: disable=g-import-not-at-top
      print(f'Interrupted ({interrupts.signal_name(e)}).', file=sys.stderr)
      sys.stdout.flush()
      sys.stderr.flush()
      # What had to be saved is saved; background threads (tf.data, thread
      # pools) must not hold the exit (a SIGTERMed run once sat idle for
      # minutes at interpreter shutdown).
      os._exit(interrupts.exit_status(e))  # pylint: disable=protected-access
    except Exception as e:  # pylint: disable=broad-except
      message = _environment_message(e)
      if message is None:
        raise
      print(f'ERROR: {message}', file=sys.stderr)
      sys.exit(1)

  app.run(_main, flags_parser=parse_flags)
