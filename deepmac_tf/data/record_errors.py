"""Turns a TF error raised while reading training data into one line that
names the file and record.

* The decoder's own assertions already start with ``record <i> of file
  <path>: ...``; that sentence is extracted from TF's message.
* A truncated TFRecord file (``DataLossError``: "truncated record at ...")
  does not name the file; ``find_truncated_record`` locates it by walking the
  TFRecord framing (seeks only, no data read; ``count_records`` and
  ``count_frames`` count the same way, e.g. for an evaluation progress bar
  and for ``--skip_bad_records``).
"""

import re
import struct

import tensorflow as tf

from deepmac_tf.errors import DataError
from deepmac_tf.errors import tf_message_line

_SOURCE = re.compile(r'record \d+ of file .*')
# TFRecord framing: uint64 length, uint32 crc, data, uint32 crc.
_HEADER_BYTES = 12
_FOOTER_BYTES = 4


def _frames(path):
  """Yields (index, complete) per TFRecord frame of ``path`` (seeks only)."""
  with tf.io.gfile.GFile(path, 'rb') as f:
    size = f.size()
    position, index = 0, 0
    while position < size:
      if size - position < _HEADER_BYTES:
        yield index, False
        return
      f.seek(position)
      (length,) = struct.unpack('<Q', f.read(8))
      position += _HEADER_BYTES + length + _FOOTER_BYTES
      yield index, position <= size
      if position > size:
        return
      index += 1


def find_truncated_record(path):
  """Index of the first record of ``path`` cut short, or None if whole."""
  for index, complete in _frames(path):
    if not complete:
      return index
  return None


def count_records(paths):
  """Number of complete records in TFRecord files (no data is read)."""
  return sum(1 for path in paths for _, complete in _frames(path) if complete)


def count_frames(path):
  """Number of records in one TFRecord file, a truncated last one included
  (what the file was meant to hold; seeks only)."""
  return sum(1 for _ in _frames(path))


def _decoder_sentence(message):
  match = _SOURCE.search(message)
  if not match:
    return None
  return match.group(0).split('\n')[0].rstrip('\'"]').replace('\\"', '"')


def input_error(error, filenames):
  """A ``DataError`` (one line) for a ``tf.errors.OpError`` from the input.

  Args:
    error: the OpError raised by the dataset iterator.
    filenames: the input files (searched for truncation when the message
      names none).
  """
  message = getattr(error, 'message', str(error))
  sentence = _decoder_sentence(message)
  if sentence:
    return DataError(sentence)
  if isinstance(error, tf.errors.DataLossError) or 'truncated' in message:
    for path in filenames:
      index = find_truncated_record(path)
      if index is not None:
        return DataError(f'record {index} of file {path}: the file is '
                         'truncated (cut short while writing or copying); '
                         'rewrite it or remove it from input_path.')
  first = tf_message_line(error)
  if "Data types don't match" in first:
    # tf.io.parse_single_example fails before any record name is known.
    return DataError(f'reading the training input failed: {first} (a record '
                     'stores a feature with another type than the input '
                     'reader expects, e.g. image/object/mask as the other '
                     'mask_type; scripts/inspect_dataset.py names it).')
  return DataError(f'reading the training input failed: {first}')
