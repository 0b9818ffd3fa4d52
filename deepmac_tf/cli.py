"""Shared plumbing for the command-line scripts in ``scripts/``.

Import this module before TensorFlow (scripts import TF lazily, after flag
parsing, so ``--help`` answers at once).

* Quiet by default: TF's C++ log lines (INFO / WARNING; on a machine with no
  NVIDIA device also the E-level "failed call to cuInit" line), TF's
  Python warnings and the INFO lines other libraries send through absl
  logging (TF's "Sharding callback duration", "Writing fingerprint", ...)
  are hidden; this project's own INFO lines stay. ``--verbose`` (or a
  ``TF_CPP_MIN_LOG_LEVEL`` set by the user) keeps them all.
* ``--help`` (and ``-h``, ``-?``, ``--helpshort``, ``--helpfull``) exit with
  status 0; absl's own help flags exit with status 1, which breaks shell
  pipelines and tests that treat non-zero as failure.
* A ``DeepMacError`` (bad config, label map, data) ends the program with one
  ``ERROR: <message>`` line on stderr and status 1, never a traceback; so do
  environment failures (permission denied, disk full, out of memory).
* Ctrl-C / SIGTERM in every script: the stack unwinds (``finally`` blocks
  run: the training loop saves its step, an export removes its staging
  folder), then one line and status 130 / 143.
"""

import errno
import logging as std_logging
import os
import sys

from absl import app
from absl import flags
from absl import logging as absl_logging

from deepmac_tf import file_checks
from deepmac_tf.errors import DeepMacError
from deepmac_tf.errors import tf_message_line

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
  # absl knows no -h; Python users type it first.
  argv = [argv[0]] + ['--help' if arg == '-h' else arg for arg in argv[1:]]
  try:
    return app.parse_flags_with_usage(argv)
  except SystemExit as e:
    if e.code == 1 and _asks_for_help(argv):
      sys.exit(0)
    raise


def _own_code_dirs():
  """Folders whose INFO log lines are shown: this package and the script."""
  package = os.path.dirname(os.path.abspath(__file__))
  script = os.path.dirname(os.path.abspath(sys.argv[0] or '.'))
  return tuple(os.path.join(d, '') for d in (package, script))


class _OwnInfoOnly(std_logging.Filter):
  """Drops INFO (and lower) records logged by code outside ``dirs``."""

  def __init__(self, dirs):
    super().__init__()
    self._dirs = dirs

  def filter(self, record):
    return (record.levelno >= std_logging.WARNING or
            os.path.abspath(record.pathname).startswith(self._dirs))


def quiet_library_info_logs():
  """Hides other libraries' INFO lines sent through absl logging (TF's
  checkpoint and SavedModel writers log several per save)."""
  handler = absl_logging.get_absl_handler()
  if not any(isinstance(f, _OwnInfoOnly) for f in handler.filters):
    handler.addFilter(_OwnInfoOnly(_own_code_dirs()))


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
  message = tf_message_line(error)
  code = file_checks.environment_errno(error)
  if code == errno.EACCES:
    return f'permission denied: {message}'
  if code == errno.ENOSPC:
    where = message.replace('; No space left on device', '').strip()
    return f'no space left on device: {where}'
  if isinstance(error, tf.errors.ResourceExhaustedError):
    return (f'out of memory: {message[:200]} (lower train_config.batch_size '
            'or the image size).')
  return None


def run(main):
  """Runs an absl ``main(argv)`` with the conventions above."""

  def _main(argv):
    if not flags.FLAGS[_VERBOSE_FLAG].value:
      std_logging.getLogger('tensorflow').setLevel(std_logging.ERROR)
      quiet_library_info_logs()
    from deepmac_tf.training import interrupts  # pylint: disable=g-import-not-at-top
    try:
      # SIGTERM (preemption, `timeout`) unwinds like Ctrl-C in every script:
      # `finally` blocks run (an export's staging folder is removed).
      with interrupts.sigterm_interrupts():
        return main(argv)
    except DeepMacError as e:
      print(f'ERROR: {e}', file=sys.stderr)
      sys.exit(1)
    except KeyboardInterrupt as e:
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
