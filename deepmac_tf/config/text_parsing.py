"""Parses text-format protos with one-line, located error messages.

Every parse problem becomes a single ``ConfigError`` of the form
``<source>:<line>:<column>: <what is wrong>``, naming the unknown field and the
message it was found in (with a close spelling when there is one), so a typo in
a 300-line pipeline config points straight at itself.

Old spellings that the OD API renamed are accepted: Deep-MAC's
``color_consistency_*`` fields are read as ``feature_consistency_*``.
"""

import difflib
import re

from google.protobuf import text_format

from deepmac_tf.errors import ConfigError

# Deep-MAC's colour-consistency fields were renamed to feature_consistency_*
# with the same field numbers; both spellings load.
_RENAMED_FIELD_PREFIXES = (('color_consistency_', 'feature_consistency_'),)
_RENAMED_SUFFIXES = ('threshold', 'dilation', 'loss_weight', 'warmup_steps',
                     'warmup_start')

_LOCATED_ERROR = re.compile(r'^(\d+):(\d+)\s*:\s*(.*)$', re.S)
_UNKNOWN_FIELD = re.compile(
    r'Message type "([\w.]+)" has no field named "([\w\[\]./]+)"')
_UNKNOWN_ENUM = re.compile(r'Enum type "([\w.]+)" has no value named (\w+)')
# Some messages echo the whole offending line in quotes before the problem.
_ECHOED_LINE = re.compile(r"^'.*?': ", re.S)


def _renaming_pattern(old_prefix):
  suffixes = '|'.join(_RENAMED_SUFFIXES)
  # A field name: at line start or after whitespace / { / ; / , and followed
  # by ':' (scalar fields never use '{').
  return re.compile(
      r'(?P<lead>(?:^|[\s{;,]))' + re.escape(old_prefix) +
      r'(?P<suffix>' + suffixes + r')(?P<tail>\s*:)', re.M)


def rename_legacy_fields(text):
  """Rewrites renamed field names to their newest spelling.

  Returns:
    (new_text, shifts) where ``shifts`` maps a 1-based line number to a list of
    (column_in_new_text, growth) for each rename on that line, so error columns
    can be mapped back to the user's file.
  """
  shifts = {}
  for old_prefix, new_prefix in _RENAMED_FIELD_PREFIXES:
    pattern = _renaming_pattern(old_prefix)
    growth = len(new_prefix) - len(old_prefix)
    new_lines = []
    for line_number, line in enumerate(text.split('\n'), start=1):
      offset = 0

      def _replace(match, line_number=line_number):
        nonlocal offset
        start = match.start() + len(match.group('lead')) + offset
        shifts.setdefault(line_number, []).append((start, growth))
        offset += growth
        return match.group('lead') + new_prefix + match.group(
            'suffix') + match.group('tail')

      new_lines.append(pattern.sub(_replace, line))
    text = '\n'.join(new_lines)
  return text, shifts


def _original_column(line, column, shifts):
  """Maps a 1-based column in the rewritten text back to the original."""
  growth = sum(g for start, g in shifts.get(line, []) if column - 1 > start)
  return column - growth


def _field_names(message_descriptor):
  return [field.name for field in message_descriptor.fields]


# OD API meta-architectures (DetectionModel fields) deepmac_tf does not have.
ODAPI_ONLY_META_ARCHITECTURES = {
    'ssd': 'SSD / EfficientDet (model { ssd { } })',
    'experimental_model': 'experimental_model',
}


def _describe(error_text, message):
  """Turns a text_format error body into a clear sentence."""
  unknown = _UNKNOWN_FIELD.search(error_text)
  if unknown:
    type_name, field = unknown.groups()
    if (type_name.endswith('.DetectionModel') and
        field in ODAPI_ONLY_META_ARCHITECTURES):
      return (f'meta-architecture {ODAPI_ONLY_META_ARCHITECTURES[field]} is '
              'supported by the OD API, not by deepmac_tf (here: '
              'center_net { } and faster_rcnn { })')
    descriptor = _find_descriptor(message.DESCRIPTOR, type_name)
    short_type = type_name.replace('deepmac_tf.protos.', '')
    text = f'unknown field "{field}" in {short_type}'
    if descriptor is not None:
      close = difflib.get_close_matches(field, _field_names(descriptor), n=1)
      if close:
        text += f' (did you mean "{close[0]}"?)'
    return text
  unknown_enum = _UNKNOWN_ENUM.search(error_text)
  if unknown_enum:
    enum_type, value = unknown_enum.groups()
    enum_descriptor = _find_enum(message.DESCRIPTOR, enum_type)
    text = (f'unknown value {value} for enum '
            f'{enum_type.replace("deepmac_tf.protos.", "")}')
    if enum_descriptor is not None:
      text += ' (expected one of ' + ', '.join(
          v.name for v in enum_descriptor.values) + ')'
    return text
  return _ECHOED_LINE.sub('', error_text.strip()).rstrip('.')


def _find_descriptor(root, full_name):
  """Finds a message descriptor by full name in root's file pool."""
  try:
    return root.file.pool.FindMessageTypeByName(full_name)
  except KeyError:
    return None


def _find_enum(root, full_name):
  try:
    return root.file.pool.FindEnumTypeByName(full_name)
  except KeyError:
    return None


def parse_text_proto(text, message, source, merge=False):
  """Parses ``text`` into ``message`` (in place) with located errors.

  Args:
    text: text-format proto.
    message: the proto message instance to fill.
    source: a name for the text in errors (a file path or "config_override").
    merge: merge into ``message`` (repeated fields append, as
      ``text_format.Merge``) instead of requiring an empty message.

  Returns:
    ``message``.

  Raises:
    ConfigError: ``<source>:<line>:<column>: <problem>``.
  """
  rewritten, shifts = rename_legacy_fields(text)
  try:
    # Unknown extensions: the OD API's external_input_reader holds
    # extensions of readers this library does not have (refused at build).
    if merge:
      text_format.Merge(rewritten, message, allow_unknown_extension=True)
    else:
      text_format.Parse(rewritten, message, allow_unknown_extension=True)
  except text_format.ParseError as e:
    match = _LOCATED_ERROR.match(str(e))
    if match:
      line, column, body = int(match.group(1)), int(match.group(2)), match.group(3)
      column = _original_column(line, column, shifts)
      raise ConfigError(
          f'{source}:{line}:{column}: {_describe(body, message)}') from None
    raise ConfigError(f'{source}: {_describe(str(e), message)}') from None
  return message
