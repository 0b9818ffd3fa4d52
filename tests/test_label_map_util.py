"""Label map loading, validation and category indices."""

import pytest

from deepmac_tf.data import label_map_util
from deepmac_tf.errors import LabelMapError

LABEL_MAP = """
item {
  id: 1
  name: '/m/01g317'
  display_name: 'person'
}
item { id: 3 name: 'car' }
"""


def _write(tmp_path, text):
  path = tmp_path / 'label_map.pbtxt'
  path.write_text(text)
  return str(path)


def test_load_and_category_index(tmp_path):
  path = _write(tmp_path, LABEL_MAP)
  label_map = label_map_util.load_label_map(path)
  assert [item.id for item in label_map.item] == [1, 3]
  index = label_map_util.create_category_index(label_map)
  assert index[1]['name'] == 'person'
  assert index[3] == {'id': 3, 'name': 'car', 'display_name': 'car',
                      'label_map_name': 'car'}
  assert label_map_util.get_label_map_dict(path) == {'/m/01g317': 1, 'car': 3}
  assert label_map_util.get_label_map_dict(path, use_display_name=True) == {
      'person': 1, 'car': 3}
  assert label_map_util.get_max_label_map_index(path) == 3


@pytest.mark.parametrize('text,message', [
    ("item { id: 0 name: 'background' }", 'id 0 is reserved'),
    ("item { id: -2 name: 'x' }", 'positive'),
    ("item { id: 1 name: 'a' } item { id: 1 name: 'b' }", 'already used'),
    ("item { name: 'a' }", 'has no id'),
    ("item { id: 1 }", 'neither name'),
    ('', 'no items'),
])
def test_invalid_label_maps(tmp_path, text, message):
  path = _write(tmp_path, text)
  with pytest.raises(LabelMapError, match=message) as info:
    label_map_util.load_label_map(path)
  assert path in str(info.value)


def test_syntax_error_names_file_line_and_field(tmp_path):
  path = _write(tmp_path, "item {\n  id: 1\n  nmae: 'x'\n}\n")
  with pytest.raises(LabelMapError) as info:
    label_map_util.load_label_map(path)
  assert f'{path}:3:3' in str(info.value)
  assert 'nmae' in str(info.value)


def test_missing_file():
  with pytest.raises(LabelMapError, match='Cannot read label map'):
    label_map_util.load_label_map('/nonexistent/label_map.pbtxt')


def test_write_round_trip(tmp_path):
  categories = [{'id': 2, 'name': 'ring'},
                {'id': 1, 'name': 'circle', 'display_name': 'Circle "c"'}]
  path = str(tmp_path / 'sub' / 'label_map.pbtxt')
  label_map_util.write_label_map(path, categories)
  index = label_map_util.create_category_index(path)
  assert index[1]['name'] == 'Circle "c"'
  assert index[2]['name'] == 'ring'
  with pytest.raises(LabelMapError):
    label_map_util.write_label_map(path, [{'id': 0, 'name': 'bg'}])
