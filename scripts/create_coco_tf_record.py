r"""Converts COCO json + images to OD API TFRecords and a label map.

Same flags as the OD API's ``create_coco_tf_record.py``; give any of the train,
val and test-dev splits (each annotations file with its image folder):

  python scripts/create_coco_tf_record.py --logtostderr \
    --train_image_dir=coco/train2017 --val_image_dir=coco/val2017 \
    --test_image_dir=coco/test2017 \
    --train_annotations_file=coco/annotations/instances_train2017.json \
    --val_annotations_file=coco/annotations/instances_val2017.json \
    --testdev_annotations_file=coco/annotations/image_info_test-dev2017.json \
    --output_dir=/tmp/coco --include_masks

Writes ``<output_dir>/coco_train.record-?????-of-00100``,
``coco_val.record-?????-of-00050`` and ``coco_testdev.record-?????-of-00050``
(``--num_shards`` overrides the per-split defaults) and
``<output_dir>/label_map.pbtxt`` built from the json categories. Masks are
written as ``PNG_MASKS``: set ``mask_type: PNG_MASKS`` and
``load_instance_masks: true`` in the input reader.
"""

import os
import sys

from absl import app
from absl import flags

from deepmac_tf import cli
from deepmac_tf import file_checks
from deepmac_tf.data import label_map_util
from deepmac_tf.errors import DataError
from deepmac_tf.errors import DeepMacError

flags.DEFINE_string('train_image_dir', '', 'Training image directory.')
flags.DEFINE_string('val_image_dir', '', 'Validation image directory.')
flags.DEFINE_string('test_image_dir', '', 'Test(-dev) image directory.')
flags.DEFINE_string('train_annotations_file', '',
                    'Training annotations json (instances_train*.json).')
flags.DEFINE_string('val_annotations_file', '',
                    'Validation annotations json (instances_val*.json).')
flags.DEFINE_string('testdev_annotations_file', '',
                    'Test-dev image-info json (no annotations needed).')
flags.DEFINE_string('output_dir', '', 'Output directory for the TFRecords.')
flags.DEFINE_boolean('include_masks', False,
                     'Write instance masks (PNG_MASKS) decoded from the '
                     'polygon / RLE segmentations.')
flags.DEFINE_integer('num_shards', None,
                     'Shards per split. Default: the OD API counts, 100 for '
                     'train and 50 for val and test-dev.')
flags.DEFINE_string('label_map_output', '',
                    'Where to write the label map built from the json '
                    'categories. Default: <output_dir>/label_map.pbtxt.')
flags.DEFINE_boolean('show_progress', True, 'Show a progress bar per split.')

FLAGS = flags.FLAGS

# (split, annotations flag, image dir flag, output file name, default shards).
_SPLITS = (
    ('train', 'train_annotations_file', 'train_image_dir', 'coco_train.record',
     100),
    ('val', 'val_annotations_file', 'val_image_dir', 'coco_val.record', 50),
    ('testdev', 'testdev_annotations_file', 'test_image_dir',
     'coco_testdev.record', 50),
)


def _requested_splits():
  """Returns [(split, annotations_file, image_dir, prefix, num_shards)]."""
  if not FLAGS.output_dir:
    raise DataError('--output_dir is required.')
  if FLAGS.num_shards is not None and FLAGS.num_shards < 1:
    raise DataError(f'--num_shards must be >= 1; got {FLAGS.num_shards}.')
  splits = []
  for split, annotations_flag, image_flag, name, default_shards in _SPLITS:
    annotations_file = FLAGS[annotations_flag].value
    image_dir = FLAGS[image_flag].value
    if annotations_file and not image_dir:
      raise DataError(f'--{annotations_flag} is given but --{image_flag} is '
                      f'not: the {split} split needs both.')
    if image_dir and not annotations_file:
      raise DataError(f'--{image_flag} is given but --{annotations_flag} is '
                      f'not: the {split} split needs both.')
    if annotations_file:
      splits.append((split, annotations_file, image_dir,
                     os.path.join(FLAGS.output_dir, name),
                     FLAGS.num_shards or default_shards))
  if not splits:
    raise DataError('No split to convert: give at least one of '
                    '--train_annotations_file, --val_annotations_file or '
                    '--testdev_annotations_file, with its image directory.')
  # Before TensorFlow loads and before any split is converted.
  file_checks.check_writable_dir(FLAGS.output_dir, '--output_dir')
  if FLAGS.label_map_output:
    file_checks.check_writable_dir(
        os.path.dirname(os.path.abspath(FLAGS.label_map_output)),
        '--label_map_output')
  return splits


def _merge_categories(merged, categories, annotations_file):
  """Adds a split's categories to ``merged`` ({id: (name, file)})."""
  for category in categories:
    previous = merged.setdefault(category['id'],
                                 (category['name'], annotations_file))
    if previous[0] != category['name']:
      raise DataError(
          f'Category id {category["id"]} is {previous[0]!r} in {previous[1]} '
          f'but {category["name"]!r} in {annotations_file}; the splits must '
          'share one label map.')


def _convert(splits):
  """Converts every split, then writes the merged label map."""
  # Imported here so that --help and flag mistakes answer without the
  # seconds-long TensorFlow import.
  # pylint: disable=g-import-not-at-top
  from deepmac_tf.data import coco_conversion
  from deepmac_tf.data import tf_example_encoder
  # pylint: enable=g-import-not-at-top
  merged = {}
  patterns = []
  for split, annotations_file, image_dir, prefix, num_shards in splits:
    stats = coco_conversion.convert_coco_split(
        annotations_file, image_dir, prefix, num_shards=num_shards,
        include_masks=FLAGS.include_masks, show_progress=FLAGS.show_progress)
    print(f'[{split}] {stats.summary()}')
    _merge_categories(merged, stats.categories, annotations_file)
    patterns.append(
        (split, tf_example_encoder.sharded_record_pattern(prefix, num_shards)))
  label_map_path = FLAGS.label_map_output or os.path.join(
      FLAGS.output_dir, 'label_map.pbtxt')
  if merged:
    label_map_util.write_label_map(
        label_map_path,
        [{'id': i, 'name': name} for i, (name, _) in sorted(merged.items())])
    print(f'Label map ({len(merged)} classes, max id {max(merged)}): '
          f'{label_map_path}')
  else:
    print('No categories in the json file(s): no label map written.')
  for split, pattern in patterns:
    print(f'{split} input_path: "{pattern}"')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  try:
    _convert(_requested_splits())
  except DeepMacError as e:
    sys.exit(f'ERROR: {e}')


if __name__ == '__main__':
  cli.run(main)
