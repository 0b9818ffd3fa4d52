"""Shared plumbing for the command-line scripts in ``scripts/``.

* ``--help`` (and ``-?``, ``--helpshort``, ``--helpfull``) exit with status 0;
  absl's own help flags exit with status 1, which breaks shell pipelines and
  tests that treat non-zero as failure.
* A ``DeepMacError`` (bad config, label map, data) ends the program with one
  ``ERROR: <message>`` line on stderr and status 1, never a traceback.
"""

import sys

from absl import app

from deepmac_tf.errors import DeepMacError

_HELP_FLAGS = ('help', '?', 'helpshort', 'helpfull', 'helpxml')


def _asks_for_help(argv):
  return any(arg.startswith('-') and
             arg.lstrip('-').split('=')[0] in _HELP_FLAGS for arg in argv[1:])


def parse_flags(argv):
  """absl flag parsing in which asking for help exits with status 0."""
  try:
    return app.parse_flags_with_usage(argv)
  except SystemExit as e:
    if e.code == 1 and _asks_for_help(argv):
      sys.exit(0)
    raise


def run(main):
  """Runs an absl ``main(argv)`` with the conventions above."""

  def _main(argv):
    try:
      return main(argv)
    except DeepMacError as e:
      print(f'ERROR: {e}', file=sys.stderr)
      sys.exit(1)

  app.run(_main, flags_parser=parse_flags)
