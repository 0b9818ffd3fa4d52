r"""Renders the synthetic partially supervised shapes dataset.

Ten shape classes on textured backgrounds: seen = circle, ellipse, square,
triangle, hexagon (ids 1-5, convex); unseen = star, cross, ring, crescent,
l_shape (ids 6-10, with holes or concavities). Train the mask head on seen
classes only and measure how well it segments the unseen ones:

  python scripts/create_synthetic_dataset.py --output_dir=/tmp/shapes \
    --num_train_images=2000 --num_val_images=500 --seed=0

Writes under ``--output_dir``: ``images/{train,val}/*.png``,
``annotations/instances_{train,val}.json`` (COCO, compressed RLE),
``synthetic_{train,val}.record-?????-of-<num_shards>`` (OD API TFRecords
with PNG_MASKS), ``label_map.pbtxt``, ``class_split.json`` and
``class_split.txt`` (``allowed_masked_classes_ids`` and
``super_categories`` lines to paste into a pipeline config). The same seed
gives byte-identical images and json.
"""

import os
import sys
import time

from absl import app
from absl import flags

from deepmac_tf import cli
from deepmac_tf.data import synthetic
from deepmac_tf.errors import DeepMacError

flags.DEFINE_string('output_dir', '', 'Dataset root (required).')
flags.DEFINE_integer('num_train_images', 1000, 'Training images.')
flags.DEFINE_integer('num_val_images', 200, 'Validation images (0: none).')
flags.DEFINE_integer('seed', 0, 'Dataset seed (>= 0).')
flags.DEFINE_integer('image_size', 64, 'Height and width of the images.')
flags.DEFINE_integer('min_objects', 1, 'Fewest objects drawn per image.')
flags.DEFINE_integer('max_objects', 4, 'Most objects drawn per image.')
flags.DEFINE_float('min_radius', 0.14,
                   'Smallest object radius, fraction of --image_size.')
flags.DEFINE_float('max_radius', 0.30,
                   'Largest object radius, fraction of --image_size.')
flags.DEFINE_float('min_visible_fraction', 0.5,
                   'Objects keeping less of their area after occlusion are '
                   'drawn but not annotated.')
flags.DEFINE_float('noise_stddev', 3.0, 'Sensor noise added to the images.')
flags.DEFINE_integer('num_shards', 1, 'TFRecord shards per split.')
flags.DEFINE_boolean('no_tfrecords', False,
                     'Write only PNGs and COCO json (no TensorFlow needed).')
flags.DEFINE_boolean('show_progress', True, 'Show progress bars.')

FLAGS = flags.FLAGS


def _config():
  return synthetic.SceneConfig(
      image_size=FLAGS.image_size, min_objects=FLAGS.min_objects,
      max_objects=FLAGS.max_objects, min_radius=FLAGS.min_radius,
      max_radius=FLAGS.max_radius,
      min_visible_fraction=FLAGS.min_visible_fraction,
      noise_stddev=FLAGS.noise_stddev)


def _report(result, seconds):
  """Prints where everything went, with counts."""
  print(f'Synthetic dataset in {result.output_dir} ({seconds:.1f} s):')
  for split, summary in result.splits.items():
    per_class = ', '.join(f'{n} {c}'
                          for n, c in summary.instances_per_class.items())
    print(f'[{split}] {summary.num_images} images, {summary.num_instances} '
          f'annotated instances, {summary.num_clutter} clutter objects')
    print(f'[{split}]   per class: {per_class}')
    print(f'[{split}]   images:      {summary.image_dir}')
    print(f'[{split}]   annotations: {summary.annotations_file}')
    if summary.tfrecord_pattern:
      print(f'[{split}]   tfrecords:   {summary.tfrecord_pattern} '
            f'(input_path for the input reader)')
  print(f'Label map:   {result.label_map_path}')
  print(f'Class split: {result.class_split_path} (seen ids '
        f'{list(synthetic.SEEN_CLASS_IDS)}: '
        f'{", ".join(synthetic.SEEN_CLASS_NAMES)}; unseen ids '
        f'{list(synthetic.UNSEEN_CLASS_IDS)}: '
        f'{", ".join(synthetic.UNSEEN_CLASS_NAMES)})')
  print(f'Pipeline-config lines: {result.class_split_text_path}')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if not FLAGS.output_dir:
    raise app.UsageError('--output_dir is required.')
  start = time.time()
  try:
    result = synthetic.create_dataset(
        os.path.abspath(FLAGS.output_dir), FLAGS.num_train_images,
        FLAGS.num_val_images, seed=FLAGS.seed, config=_config(),
        num_shards=FLAGS.num_shards, write_records=not FLAGS.no_tfrecords,
        show_progress=FLAGS.show_progress)
  except DeepMacError as e:
    sys.exit(f'ERROR: {e}')
  _report(result, time.time() - start)


if __name__ == '__main__':
  cli.run(main)
