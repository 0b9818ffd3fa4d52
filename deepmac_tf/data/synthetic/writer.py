"""Writes the synthetic dataset: PNGs, COCO json, TFRecords, label map, split.

Layout under ``output_dir``::

  images/<split>/<split>_000000.png ...
  annotations/instances_<split>.json      COCO, compressed-RLE segmentations
  synthetic_<split>.record-00000-of-0000N TFRecords (OD API keys, PNG masks)
  label_map.pbtxt
  class_split.json                        seen / unseen ids and names
  class_split.txt                         the same as pipeline-config text

Every image is rendered from its own generator (``scene.scene_rng``), so the
same seed gives byte-identical PNGs and json, and a split does not depend on
the size of the other.
"""

import dataclasses
import json
import os

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
import tqdm

from deepmac_tf import errors
from deepmac_tf.data.synthetic import classes
from deepmac_tf.data.synthetic import scene as scene_lib

SPLITS = ('train', 'val')
LABEL_MAP_FILENAME = 'label_map.pbtxt'
CLASS_SPLIT_FILENAME = 'class_split.json'
CLASS_SPLIT_TEXT_FILENAME = 'class_split.txt'


@dataclasses.dataclass
class SplitSummary:
  """What was written for one split.

  Attributes:
    split: split name.
    num_images: images rendered.
    num_instances: annotated instances.
    num_clutter: objects drawn but not annotated.
    instances_per_class: {class name: annotated instances}.
    image_dir: folder of the PNGs.
    annotations_file: the COCO json.
    tfrecord_files: TFRecord shards (empty when not written).
    tfrecord_pattern: their glob, for a config's ``input_path`` ('' if none).
  """
  split: str
  num_images: int
  num_instances: int = 0
  num_clutter: int = 0
  instances_per_class: dict = dataclasses.field(default_factory=dict)
  image_dir: str = ''
  annotations_file: str = ''
  tfrecord_files: list = dataclasses.field(default_factory=list)
  tfrecord_pattern: str = ''


@dataclasses.dataclass
class DatasetSummary:
  """What ``create_dataset`` wrote: shared files and one summary per split."""
  output_dir: str
  label_map_path: str
  class_split_path: str
  class_split_text_path: str
  splits: dict = dataclasses.field(default_factory=dict)


def image_filename(split, index):
  """PNG file name of image ``index`` (0-based) of ``split``."""
  return f'{split}_{index:06d}.png'


def tfrecord_prefix(output_dir, split):
  """``<output_dir>/synthetic_<split>.record`` (shards get a suffix)."""
  return os.path.join(output_dir, f'synthetic_{split}.record')


def encode_rle(mask):
  """[H, W] bool mask -> COCO compressed RLE dict with a str ``counts``."""
  rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
  return {'size': [int(s) for s in rle['size']],
          'counts': rle['counts'].decode('ascii')}


def coco_annotation(annotation_id, image_id, instance):
  """The COCO ``annotations`` entry of one ``scene.Instance``."""
  return {
      'id': annotation_id,
      'image_id': image_id,
      'category_id': instance.class_id,
      'segmentation': encode_rle(instance.mask),
      'area': float(instance.area),
      'bbox': [float(v) for v in instance.bbox],
      'iscrowd': 0,
  }


def render_split(output_dir, split, num_images, seed, config,
                 show_progress=True):
  """Renders one split's PNGs and writes its COCO json.

  Args:
    output_dir: dataset root.
    split: split name (also keys the per-image generators).
    num_images: number of images (>= 1).
    seed: dataset seed (>= 0).
    config: ``scene.SceneConfig``.
    show_progress: show a tqdm bar.

  Returns:
    A ``SplitSummary`` (without TFRecords).
  """
  image_dir = os.path.join(output_dir, 'images', split)
  annotations_file = os.path.join(output_dir, 'annotations',
                                  f'instances_{split}.json')
  os.makedirs(image_dir, exist_ok=True)
  os.makedirs(os.path.dirname(annotations_file), exist_ok=True)
  summary = SplitSummary(split=split, num_images=num_images,
                         image_dir=image_dir,
                         annotations_file=annotations_file,
                         instances_per_class={n: 0 for n in
                                              classes.CLASS_NAMES})
  images, annotations = [], []
  for index in tqdm.trange(num_images, desc=f'render {split}', unit='img',
                           disable=not show_progress):
    scene = scene_lib.render_scene(scene_lib.scene_rng(seed, split, index),
                                   config)
    filename = image_filename(split, index)
    Image.fromarray(scene.image).save(os.path.join(image_dir, filename),
                                      format='PNG')
    image_id = index + 1
    height, width = scene.image.shape[:2]
    images.append({'id': image_id, 'file_name': filename, 'height': height,
                   'width': width})
    for instance in scene.instances:
      annotations.append(coco_annotation(len(annotations) + 1, image_id,
                                         instance))
      summary.instances_per_class[instance.class_name] += 1
    summary.num_clutter += scene.num_clutter
  summary.num_instances = len(annotations)
  coco = {
      'info': {'description': 'deepmac_tf synthetic partially supervised '
                              'shapes', 'split': split, 'seed': int(seed),
               'image_size': config.image_size},
      'licenses': [],
      'images': images,
      'annotations': annotations,
      'categories': classes.coco_categories(),
  }
  with open(annotations_file, 'w', encoding='utf-8') as f:
    json.dump(coco, f)
  return summary


def write_class_split(output_dir):
  """Writes ``class_split.json`` and ``class_split.txt``; returns paths."""
  json_path = os.path.join(output_dir, CLASS_SPLIT_FILENAME)
  text_path = os.path.join(output_dir, CLASS_SPLIT_TEXT_FILENAME)
  with open(json_path, 'w', encoding='utf-8') as f:
    json.dump(classes.class_split(), f, indent=2)
    f.write('\n')
  with open(text_path, 'w', encoding='utf-8') as f:
    f.write(classes.pipeline_config_snippet())
  return json_path, text_path


def write_label_map(output_dir):
  """Writes ``label_map.pbtxt`` of the 10 classes; returns its path."""
  from deepmac_tf.data import label_map_util  # pylint: disable=g-import-not-at-top
  path = os.path.join(output_dir, LABEL_MAP_FILENAME)
  label_map_util.write_label_map(path, classes.label_map_categories())
  return path


def write_tfrecords(summary, output_dir, num_shards, show_progress=True):
  """Converts a rendered split to TFRecords with masks; fills the summary.

  Raises:
    errors.DataError: the converter dropped images or annotations (a bug:
      rendered data is always valid).
  """
  # Imported here: TensorFlow is needed only for this step.
  from deepmac_tf.data import coco_conversion  # pylint: disable=g-import-not-at-top
  from deepmac_tf.data import tf_example_encoder  # pylint: disable=g-import-not-at-top
  prefix = tfrecord_prefix(output_dir, summary.split)
  stats = coco_conversion.convert_coco_split(
      summary.annotations_file, summary.image_dir,
      prefix, num_shards=num_shards,
      include_masks=True, show_progress=show_progress)
  if (stats.images_written != summary.num_images or
      stats.annotations_written != summary.num_instances):
    raise errors.DataError(
        f'Converting {summary.annotations_file} wrote {stats.images_written} '
        f'images / {stats.annotations_written} annotations, expected '
        f'{summary.num_images} / {summary.num_instances}: '
        f'{stats.summary()}')
  summary.tfrecord_files = list(stats.output_files)
  summary.tfrecord_pattern = tf_example_encoder.sharded_record_pattern(
      prefix, num_shards)
  return summary


def create_dataset(output_dir, num_train_images, num_val_images, seed=0,
                   config=None, num_shards=1, write_records=True,
                   show_progress=True):
  """Renders the whole dataset and writes every output file.

  Args:
    output_dir: dataset root (created if needed; files are overwritten).
    num_train_images: train images (>= 0).
    num_val_images: val images (>= 0); a split with 0 images is skipped.
    seed: dataset seed (>= 0).
    config: ``scene.SceneConfig`` (default: 64x64, 1-4 objects).
    num_shards: TFRecord shards per split.
    write_records: also convert each split to TFRecords.
    show_progress: show tqdm bars.

  Returns:
    A ``DatasetSummary``.

  Raises:
    errors.ConfigError: bad counts, seed, shards or scene options.
  """
  config = (config or scene_lib.SceneConfig()).validate()
  counts = {'train': num_train_images, 'val': num_val_images}
  for split, count in counts.items():
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or (
        count < 0):
      raise errors.ConfigError(
          f'num_{split}_images = {count!r}: expected an integer >= 0.')
  if sum(counts.values()) == 0:
    raise errors.ConfigError('num_train_images and num_val_images are both 0: '
                             'nothing to write.')
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or (
      seed < 0):
    raise errors.ConfigError(f'seed = {seed!r}: expected an integer >= 0.')
  if isinstance(num_shards, bool) or not isinstance(
      num_shards, (int, np.integer)) or num_shards < 1:
    raise errors.ConfigError(
        f'num_shards = {num_shards!r}: expected an integer >= 1.')
  os.makedirs(output_dir, exist_ok=True)
  class_split_path, class_split_text_path = write_class_split(output_dir)
  result = DatasetSummary(
      output_dir=output_dir, label_map_path=write_label_map(output_dir),
      class_split_path=class_split_path,
      class_split_text_path=class_split_text_path)
  for split in SPLITS:
    if not counts[split]:
      continue
    summary = render_split(output_dir, split, counts[split], seed, config,
                           show_progress)
    if write_records:
      write_tfrecords(summary, output_dir, num_shards, show_progress)
    result.splits[split] = summary
  return result
