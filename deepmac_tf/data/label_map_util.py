"""Label maps: the OD API's ``label_map.pbtxt`` (``StringIntLabelMap``).

A label map is a list of ``item { id: 1 name: 'person' display_name: 'person' }``
entries. Ids are positive integers (0 is the background and is rejected), unique,
and are the class ids stored in TFRecords (``image/object/class/label``).
"""

import os

from google.protobuf import text_format

from deepmac_tf.errors import LabelMapError
from deepmac_tf.protos import string_int_label_map_pb2


def _parse_label_map_text(text, source):
  label_map = string_int_label_map_pb2.StringIntLabelMap()
  try:
    text_format.Parse(text, label_map)
  except text_format.ParseError as e:
    # ParseError messages start with "line:column : message".
    raise LabelMapError(f'{source}:{e}') from None
  return label_map


def validate_label_map(label_map, source='<label map>'):
  """Checks ids are positive and unique and every item has a name.

  Raises:
    LabelMapError: naming the label map and the offending item.
  """
  if not label_map.item:
    raise LabelMapError(f'{source}: the label map has no items.')
  seen_ids = {}
  for index, item in enumerate(label_map.item):
    where = f'{source}: item {index + 1} (name {item.name!r}, id {item.id})'
    if not item.HasField('id'):
      raise LabelMapError(f'{where}: has no id.')
    if item.id == 0:
      raise LabelMapError(
          f'{where}: id 0 is reserved for the background; class ids start at 1.')
    if item.id < 0:
      raise LabelMapError(f'{where}: ids must be positive integers.')
    if not item.name and not item.display_name:
      raise LabelMapError(f'{where}: has neither name nor display_name.')
    if item.id in seen_ids:
      raise LabelMapError(
          f'{where}: id {item.id} is already used by item '
          f'{seen_ids[item.id] + 1}.')
    seen_ids[item.id] = index


def load_label_map(path):
  """Reads and validates a text-format label map.

  Args:
    path: path of a ``label_map.pbtxt`` file.

  Returns:
    A validated ``StringIntLabelMap`` proto.

  Raises:
    LabelMapError: the file is missing, unparsable, or has invalid ids.
  """
  if not path:
    raise LabelMapError('No label map path given (label_map_path is empty).')
  try:
    with open(path, encoding='utf-8') as f:
      text = f.read()
  except OSError as e:
    raise LabelMapError(f'Cannot read label map {path}: {e.strerror}') from None
  label_map = _parse_label_map_text(text, path)
  validate_label_map(label_map, path)
  return label_map


def _as_label_map(path_or_proto):
  if isinstance(path_or_proto, string_int_label_map_pb2.StringIntLabelMap):
    return path_or_proto
  return load_label_map(os.fspath(path_or_proto))


def get_label_map_dict(path_or_proto, use_display_name=False):
  """Maps class names (or display names) to ids.

  Args:
    path_or_proto: a label map path or ``StringIntLabelMap``.
    use_display_name: key by ``display_name`` instead of ``name`` (items without
      a display name fall back to their name).

  Returns:
    ``{name: id}``.

  Raises:
    LabelMapError: two items share a name with different ids.
  """
  label_map = _as_label_map(path_or_proto)
  result = {}
  for item in label_map.item:
    name = item.display_name if (use_display_name and
                                 item.display_name) else item.name
    if not name:
      name = item.display_name
    if name in result and result[name] != item.id:
      raise LabelMapError(
          f'Label map name {name!r} is used by ids {result[name]} and '
          f'{item.id}.')
    result[name] = item.id
  return result


def create_category_index(path_or_proto):
  """Builds ``{id: {'id': id, 'name': name, 'display_name': display_name}}``.

  ``name`` is the display name when one is given (what visualizations and
  per-category metrics show), as in the OD API's category index.
  """
  label_map = _as_label_map(path_or_proto)
  index = {}
  for item in label_map.item:
    display = item.display_name or item.name
    index[item.id] = {'id': item.id, 'name': display,
                      'display_name': display, 'label_map_name': item.name}
  return index


def get_max_label_map_index(path_or_proto):
  """Returns the largest class id in the label map."""
  return max(item.id for item in _as_label_map(path_or_proto).item)


def categories_to_label_map(categories):
  """Builds a validated ``StringIntLabelMap`` from category dicts.

  Args:
    categories: iterable of dicts with ``id``, ``name`` and optionally
      ``display_name`` (COCO json ``categories`` work as they are).
  """
  label_map = string_int_label_map_pb2.StringIntLabelMap()
  for category in sorted(categories, key=lambda c: c['id']):
    item = label_map.item.add()
    item.id = int(category['id'])
    item.name = str(category['name'])
    item.display_name = str(category.get('display_name', category['name']))
  validate_label_map(label_map, '<categories>')
  return label_map


def write_label_map(path, categories):
  """Writes categories as a text-format ``label_map.pbtxt``.

  Args:
    path: output file path (parent folders are created).
    categories: iterable of dicts with ``id``, ``name`` and optionally
      ``display_name``.
  """
  label_map = categories_to_label_map(categories)
  lines = []
  for item in label_map.item:
    lines.append('item {')
    lines.append(f'  id: {item.id}')
    lines.append(f'  name: {_quote(item.name)}')
    lines.append(f'  display_name: {_quote(item.display_name)}')
    lines.append('}')
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  with open(path, 'w', encoding='utf-8') as f:
    f.write('\n'.join(lines) + '\n')


def _quote(value):
  escaped = value.replace('\\', '\\\\').replace('"', '\\"')
  return f'"{escaped}"'
