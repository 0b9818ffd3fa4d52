"""Our copies of the OD API's sample configs keep its settings and metric
keys (issue 13, part 5). tests/fixtures/odapi_configs/ holds the OD API's
own files; every difference must be listed here and commented in ours."""

import glob
import os

import pytest

from deepmac_tf import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ODAPI = os.path.join(REPO, 'tests', 'fixtures', 'odapi_configs')
OURS = os.path.join(REPO, 'configs')
# Deliberate differences: {config: {flattened field: why}}; each one has a
# "Changed on purpose" comment in our file.
DELIBERATE = {
    'center_net_deepmac_1024x1024_coco_tpu-128.config': {
        'train_config.fine_tune_checkpoint_type':
            'the OD API newest code rejects "fine_tune"',
    },
}
COPIES = ['center_net_deepmac_1024x1024_coco_tpu-128.config',
          'center_net_deepmac_1024x1024_voc_only_tpu-128.config',
          'center_net_deepmac_1024x1024_non_voc_only_tpu-128.config',
          'center_net_deepmac_512x512_voc_only_tpu-32.config']


def flatten(message, prefix=''):
  """{dotted field path: value} of every set field (maps as [key])."""
  out = {}
  for field, value in message.ListFields():
    name = prefix + field.name
    if field.message_type is not None and (
        field.message_type.GetOptions().map_entry):
      out.update({f'{name}[{k}]': v for k, v in value.items()})
    elif field.message_type is not None and field.is_repeated:
      for i, item in enumerate(value):
        out.update(flatten(item, f'{name}[{i}].'))
    elif field.message_type is not None:
      out.update(flatten(value, name + '.'))
    else:
      out[name] = list(value) if field.is_repeated else value
  return out


@pytest.mark.parametrize('name', COPIES)
def test_copy_keeps_the_odapi_settings(name):
  theirs = flatten(config_lib.get_pipeline_config_from_file(
      os.path.join(ODAPI, name)))
  ours_path = os.path.join(OURS, name)
  ours = flatten(config_lib.get_pipeline_config_from_file(ours_path))
  differing = {key for key in set(theirs) | set(ours)
               if theirs.get(key) != ours.get(key)}
  assert differing == set(DELIBERATE.get(name, {})), differing
  with open(ours_path, encoding='utf-8') as f:
    text = f.read()
  assert text.count('Changed on purpose') >= len(differing)


def test_no_config_renames_an_odapi_super_category():
  theirs = config_lib.get_pipeline_config_from_file(
      os.path.join(ODAPI, COPIES[0])).eval_config.super_categories
  for path in sorted(glob.glob(os.path.join(OURS, '*.config'))):
    categories = config_lib.get_pipeline_config_from_file(
        path).eval_config.super_categories
    for key, value in categories.items():
      if key in theirs:
        assert value == theirs[key], (path, key)
    if 'electronic' in categories:
      assert set(theirs) <= set(categories) or 'VOC' not in categories, path
