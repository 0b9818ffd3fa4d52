"""Converts one COCO-format split (json + image folder) to OD API TFRecords.

Each image of the json becomes one ``tf.train.Example`` (``tf_example_encoder``)
in ``<output_path_prefix>-?????-of-<num_shards:05d>``; images without
annotations get zero instances, so a test-dev json (no ``annotations``)
converts to images only. Category ids are written as they are (COCO ids are
1-based label-map ids) with the category name as class text; crowd
annotations are kept with ``is_crowd = 1``; with ``include_masks``, masks are
decoded like pycocotools' ``COCO.annToMask`` (polygons, uncompressed or
compressed RLE) and written as ``PNG_MASKS``. A box overshooting the image by
at most ``BOX_CLIP_TOLERANCE_PIXELS`` (annotation-tool rounding) is clipped.

Bad annotations are skipped and counted by reason (``SKIP_*``) in the returned
``ConversionStats``; unreadable image files are skipped and named there. A
structurally broken json raises ``DataError``.
"""

import collections
import dataclasses
import io
import json
import math
import os
from typing import Dict, List

from absl import logging
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
import tensorflow as tf
import tqdm

from deepmac_tf.data import tf_example_encoder
from deepmac_tf.errors import DataError

SKIP_UNKNOWN_IMAGE_ID = 'unknown_image_id'
SKIP_UNKNOWN_CATEGORY_ID = 'unknown_category_id'
SKIP_MALFORMED_BOX = 'malformed_box'
SKIP_DEGENERATE_BOX = 'degenerate_box'
SKIP_BOX_OUTSIDE_IMAGE = 'box_outside_image'
SKIP_MISSING_SEGMENTATION = 'missing_segmentation'
SKIP_INVALID_SEGMENTATION = 'invalid_segmentation'
SKIP_IMAGE_NOT_WRITTEN = 'image_not_written'

BOX_CLIP_TOLERANCE_PIXELS = 1.0
_MAX_EXAMPLE_IDS = 5
# Per-image skip warnings printed (the summary counts them all).
_MAX_SKIP_WARNINGS = 10
# Images looked up before converting, to catch a wrong image folder.
_FIRST_IMAGES_CHECKED = 20


def _some(names):
  """The first ``_MAX_EXAMPLE_IDS`` names, and how many more."""
  shown = ', '.join(str(n) for n in names[:_MAX_EXAMPLE_IDS])
  more = len(names) - _MAX_EXAMPLE_IDS
  return f'{shown} and {more} more' if more > 0 else shown


@dataclasses.dataclass
class ConversionStats:
  """What ``convert_coco_split`` wrote and skipped.

  Attributes:
    output_files: the shard paths written.
    images_written: number of examples written.
    images_skipped_corrupt: file names (as in the json) of images that are
      missing, unreadable or not decodable.
    images_skipped_size_mismatch: file names of images whose pixel size
      differs from the json's width/height.
    annotations_written: number of instances written.
    annotations_skipped: ``{SKIP_* reason: count}``.
    skipped_annotation_examples: ``{reason: [up to 5 annotation ids]}``.
    categories: the json's categories as ``{'id', 'name'}`` dicts, by id.
  """
  output_files: List[str] = dataclasses.field(default_factory=list)
  images_written: int = 0
  images_skipped_corrupt: List[str] = dataclasses.field(default_factory=list)
  images_skipped_size_mismatch: List[str] = dataclasses.field(
      default_factory=list)
  annotations_written: int = 0
  annotations_skipped: Dict[str, int] = dataclasses.field(
      default_factory=dict)
  skipped_annotation_examples: Dict[str, list] = dataclasses.field(
      default_factory=dict)
  categories: List[dict] = dataclasses.field(default_factory=list)

  @property
  def num_annotations_skipped(self):
    return sum(self.annotations_skipped.values())

  def skip_annotation(self, reason, annotation_id):
    """Counts one skipped annotation (keeps a few ids as examples)."""
    self.annotations_skipped[reason] = self.annotations_skipped.get(reason,
                                                                    0) + 1
    examples = self.skipped_annotation_examples.setdefault(reason, [])
    if len(examples) < _MAX_EXAMPLE_IDS:
      examples.append(annotation_id)

  def summary(self):
    """A few human-readable lines."""
    lines = [f'{self.images_written} images and {self.annotations_written} '
             f'annotations written to {len(self.output_files)} shard(s).']
    if self.images_skipped_corrupt:
      lines.append(f'{len(self.images_skipped_corrupt)} unreadable image(s) '
                   f'skipped: {_some(self.images_skipped_corrupt)}')
    if self.images_skipped_size_mismatch:
      lines.append(f'{len(self.images_skipped_size_mismatch)} image(s) whose '
                   'size differs from the json skipped: '
                   f'{_some(self.images_skipped_size_mismatch)}')
    for reason, count in sorted(self.annotations_skipped.items()):
      ids = ', '.join(
          str(i) for i in self.skipped_annotation_examples.get(reason, []))
      lines.append(f'{count} annotation(s) skipped ({reason}), e.g. ids: '
                   f'{ids}')
    return '\n'.join(lines)


def load_coco_json(annotations_file):
  """Reads a COCO json and checks its structure and ``images`` entries.

  Returns:
    The parsed dict; ``annotations`` and ``categories`` default to [].

  Raises:
    DataError: unreadable file, invalid json, missing keys, bad or duplicate
      image entries.
  """
  try:
    with tf.io.gfile.GFile(annotations_file, 'r') as f:
      data = json.load(f)
  except (tf.errors.OpError, OSError) as e:
    raise DataError(f'Cannot read COCO annotations file {annotations_file}: '
                    f'{e}') from None
  except ValueError as e:
    raise DataError(f'{annotations_file} is not valid json: {e}') from None
  if not isinstance(data, dict) or not isinstance(data.get('images'), list):
    raise DataError(f'{annotations_file}: expected a COCO json object with an '
                    '"images" list.')
  for key in ('annotations', 'categories'):
    if not isinstance(data.setdefault(key, []), list):
      raise DataError(f'{annotations_file}: "{key}" must be a list.')
  seen = set()
  for index, image in enumerate(data['images']):
    where = f'{annotations_file}: images[{index}]'
    if not isinstance(image, dict) or any(
        k not in image for k in ('id', 'file_name', 'height', 'width')):
      raise DataError(f'{where} needs "id", "file_name", "height" and '
                      '"width".')
    if not isinstance(image['id'], (int, str)):
      raise DataError(f'{where}: "id" must be an integer or a string; got '
                      f'{image["id"]!r}.')
    if not isinstance(image['file_name'], str) or not image['file_name']:
      raise DataError(f'{where}: "file_name" must be a non-empty string; got '
                      f'{image["file_name"]!r}.')
    if not _is_positive_int(image['height']) or not _is_positive_int(
        image['width']):
      raise DataError(f'{where} (file {image["file_name"]}): height and width '
                      f'must be positive integers; got {image["height"]!r} x '
                      f'{image["width"]!r}.')
    if image['id'] in seen:
      raise DataError(f'{where}: image id {image["id"]} is used twice.')
    seen.add(image['id'])
  return data


def _check_image_folder(data, image_dir, annotations_file):
  """Fails before anything is written when none of the json's first
  ``_FIRST_IMAGES_CHECKED`` images is in ``image_dir``: a wrong folder
  (otherwise every image of the split would be tried and skipped)."""
  first = [image['file_name'] for image in
           data['images'][:_FIRST_IMAGES_CHECKED]]
  if not first or any(tf.io.gfile.exists(os.path.join(image_dir, name))
                      for name in first):
    return
  count = (f'all {len(first)}' if len(first) == len(data['images']) else
           f'the first {len(first)}')
  raise DataError(
      f'{image_dir}: {count} images of {annotations_file} are missing (e.g. '
      f'{os.path.join(image_dir, first[0])}); is it the right image folder? '
      'Nothing was written.')


def _raise_nothing_written(stats, data, annotations_file, image_dir):
  """No image could be read: remove the empty shards and say why."""
  for path in stats.output_files:
    if tf.io.gfile.exists(path):
      tf.io.gfile.remove(path)
  skipped = stats.images_skipped_corrupt + stats.images_skipped_size_mismatch
  example = os.path.join(image_dir, skipped[0]) if skipped else ''
  reason = ('do not match the sizes in the json' if not
            stats.images_skipped_corrupt else 'are missing or unreadable')
  raise DataError(
      f'{image_dir}: all {len(data["images"])} images of {annotations_file} '
      f'{reason} (e.g. {example}); is it the right image folder? Nothing was '
      'written.')


def _is_positive_int(value):
  return isinstance(value, int) and not isinstance(value, bool) and value > 0


def decode_segmentation(segmentation, height, width):
  """Decodes a COCO segmentation like pycocotools' ``COCO.annToMask``.

  Args:
    segmentation: a list of polygons, an uncompressed RLE (``counts`` is a
      list) or a compressed RLE (``counts`` is a string).
    height: image height.
    width: image width.

  Returns:
    [height, width] uint8 mask of 0/1.

  Raises:
    DataError: the segmentation cannot be decoded or has another size.
  """
  try:
    if isinstance(segmentation, list):
      rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height,
                                                    width))
    elif isinstance(segmentation['counts'], list):
      rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
      rle = segmentation
    mask = mask_utils.decode(rle)
  except Exception as e:  # pylint: disable=broad-except
    # pycocotools raises bare Exception / TypeError / IndexError / KeyError.
    raise DataError(f'undecodable segmentation ({type(e).__name__}: {e})'
                    ) from None
  if mask.shape != (height, width):
    raise DataError(f'segmentation size {list(mask.shape)} differs from the '
                    f'image size {[height, width]}')
  return mask


def _read_image(path):
  """Returns (encoded bytes, format, (width, height)); raises on bad files."""
  with tf.io.gfile.GFile(path, 'rb') as f:
    encoded = f.read()
  with Image.open(io.BytesIO(encoded)) as image:
    image.load()  # Full decode: catches truncated files.
    size = image.size
    image_format = (image.format or '').lower()
    if image_format in ('jpeg', 'png'):
      return encoded, image_format, size
    # Other formats (BMP, TIFF, ...) are stored as lossless PNG.
    buffer = io.BytesIO()
    image.convert('RGB').save(buffer, format='PNG')
    return buffer.getvalue(), 'png', size


def _load_image(image, image_dir, annotations_file, stats):
  """Returns (encoded, format), or None after recording why it is skipped."""
  path = os.path.join(image_dir, image['file_name'])
  try:
    encoded, image_format, size = _read_image(path)
  except Exception as e:  # pylint: disable=broad-except
    # PIL raises OSError, SyntaxError, ValueError, ...; TF raises OpError.
    logging.log_first_n(
        logging.WARNING, 'Skipping image %s: cannot read or decode it (%s: '
        '%s); the summary counts all skipped images.', _MAX_SKIP_WARNINGS,
        path, type(e).__name__, e)
    stats.images_skipped_corrupt.append(image['file_name'])
    return None
  if size != (image['width'], image['height']):
    logging.log_first_n(
        logging.WARNING, 'Skipping image %s: it is %dx%d (width x height) but '
        '%s says %dx%d; the summary counts all skipped images.',
        _MAX_SKIP_WARNINGS, path, size[0], size[1], annotations_file,
        image['width'], image['height'])
    stats.images_skipped_size_mismatch.append(image['file_name'])
    return None
  return encoded, image_format


def checked_box(annotation, height, width):
  """A COCO annotation's ``bbox`` checked against its image.

  Returns:
    ((ymin, xmin, ymax, xmax) normalized, None), or (None, a ``SKIP_*``
    reason): malformed, degenerate, or outside the image by more than
    ``BOX_CLIP_TOLERANCE_PIXELS`` (a smaller overshoot is clipped).
  """
  bbox = annotation.get('bbox')
  if (not isinstance(bbox, (list, tuple)) or len(bbox) != 4 or
      not all(isinstance(v, (int, float)) and not isinstance(v, bool) and
              math.isfinite(v) for v in bbox)):
    return None, SKIP_MALFORMED_BOX
  x, y, w, h = (float(v) for v in bbox)
  if w <= 0 or h <= 0:
    return None, SKIP_DEGENERATE_BOX
  tol = BOX_CLIP_TOLERANCE_PIXELS
  if x < -tol or y < -tol or x + w > width + tol or y + h > height + tol:
    return None, SKIP_BOX_OUTSIDE_IMAGE
  xmin, xmax = max(x, 0.0), min(x + w, float(width))
  ymin, ymax = max(y, 0.0), min(y + h, float(height))
  if xmax <= xmin or ymax <= ymin:
    return None, SKIP_DEGENERATE_BOX
  return (ymin / height, xmin / width, ymax / height, xmax / width), None


def _build_example(image, encoded, image_format, annotations, names,
                   include_masks, stats):
  """Validates an image's annotations and returns its tf.train.Example."""
  height, width = image['height'], image['width']
  boxes, class_ids, texts, crowd, areas, masks = [], [], [], [], [], []
  for annotation in annotations:
    annotation_id = annotation.get('id')
    if annotation.get('category_id') not in names:
      stats.skip_annotation(SKIP_UNKNOWN_CATEGORY_ID, annotation_id)
      continue
    box, reason = checked_box(annotation, height, width)
    if reason:
      stats.skip_annotation(reason, annotation_id)
      continue
    if include_masks:
      if not annotation.get('segmentation'):
        stats.skip_annotation(SKIP_MISSING_SEGMENTATION, annotation_id)
        continue
      try:
        masks.append(decode_segmentation(annotation['segmentation'], height,
                                         width))
      except DataError as e:
        logging.log_first_n(logging.WARNING,
                            'Annotation %s of image %s: %s; skipped.', 20,
                            annotation_id, image['file_name'], e)
        stats.skip_annotation(SKIP_INVALID_SEGMENTATION, annotation_id)
        continue
    boxes.append(box)
    class_ids.append(annotation['category_id'])
    texts.append(names[annotation['category_id']])
    crowd.append(1 if annotation.get('iscrowd') else 0)
    area = annotation.get('area')
    if not isinstance(area, (int, float)) or isinstance(area, bool):
      area = (box[2] - box[0]) * height * (box[3] - box[1]) * width
    areas.append(area)
  mask_array = None
  if include_masks:
    mask_array = (np.stack(masks) if masks else
                  np.zeros([0, height, width], np.uint8))
  example = tf_example_encoder.create_tf_example(
      encoded, height, width,
      boxes=np.asarray(boxes, np.float64).reshape(-1, 4),
      class_ids=class_ids, class_texts=texts,
      image_format=image_format, filename=image['file_name'],
      source_id=str(image['id']), is_crowd=crowd, area=areas,
      masks=mask_array, mask_type=tf_example_encoder.PNG_MASKS)
  return example, len(boxes)


def _label_map_categories(data, annotations_file):
  """Checks the json's categories; returns sorted {'id', 'name'} dicts.

  Some exporters add an unused placeholder category 0; the OD API reserves
  id 0 for the background, so it is dropped when no annotation uses it.
  """
  categories = {}
  for index, category in enumerate(data['categories']):
    where = f'{annotations_file}: categories[{index}]'
    if not isinstance(category, dict) or 'id' not in category or (
        'name' not in category):
      raise DataError(f'{where} needs "id" and "name".')
    if not _is_positive_int(category['id']) and category['id'] != 0:
      raise DataError(f'{where} ({category["name"]!r}): category ids must be '
                      f'integers >= 1; got {category["id"]!r}.')
    if category['id'] in categories:
      raise DataError(f'{where}: category id {category["id"]} is used twice.')
    categories[category['id']] = str(category['name'])
  if 0 in categories:
    if any(isinstance(a, dict) and a.get('category_id') == 0
           for a in data['annotations']):
      raise DataError(
          f'{annotations_file}: category {categories[0]!r} has id 0, which '
          'the OD API reserves for the background, and annotations use it; '
          'renumber the categories to start at 1.')
    logging.warning('%s: ignoring unused category %r with id 0 (the '
                    'background id).', annotations_file, categories.pop(0))
  return [{'id': i, 'name': name} for i, name in sorted(categories.items())]


def _group_annotations(data, stats):
  image_ids = {image['id'] for image in data['images']}
  by_image = collections.defaultdict(list)
  for annotation in data['annotations']:
    image_id = (annotation.get('image_id')
                if isinstance(annotation, dict) else None)
    if not isinstance(image_id, (int, str)) or image_id not in image_ids:
      annotation_id = (annotation.get('id')
                       if isinstance(annotation, dict) else None)
      stats.skip_annotation(SKIP_UNKNOWN_IMAGE_ID, annotation_id)
      continue
    by_image[image_id].append(annotation)
  return by_image


def convert_coco_split(annotations_file,
                       image_dir,
                       output_path_prefix,
                       num_shards=1,
                       include_masks=False,
                       show_progress=True):
  """Converts one COCO split to sharded OD API TFRecords.

  Args:
    annotations_file: COCO json (instances_*.json, or an image-info json
      without annotations such as test-dev).
    image_dir: folder holding the json's ``file_name`` entries.
    output_path_prefix: e.g. ``/out/coco_train.record``; files are
      ``<prefix>-00000-of-<num_shards:05d>`` ...
    num_shards: number of output files.
    include_masks: decode segmentations and write ``image/object/mask`` as
      PNG_MASKS.
    show_progress: show a tqdm progress bar of images.

  Returns:
    ``ConversionStats``.

  Raises:
    DataError: unreadable or malformed json, missing image folder, bad
      ``num_shards``.
  """
  tf_example_encoder.sharded_record_paths(output_path_prefix, num_shards)
  data = load_coco_json(annotations_file)
  if not tf.io.gfile.isdir(image_dir):
    raise DataError(f'Image folder {image_dir} (for {annotations_file}) does '
                    'not exist.')
  _check_image_folder(data, image_dir, annotations_file)
  stats = ConversionStats(
      categories=_label_map_categories(data, annotations_file))
  names = {c['id']: c['name'] for c in stats.categories}
  by_image = _group_annotations(data, stats)
  logging.info('Converting %s: %d images, %d annotations -> %s',
               annotations_file, len(data['images']),
               len(data['annotations']), output_path_prefix)
  with tf_example_encoder.ShardedTFRecordWriter(output_path_prefix,
                                                num_shards) as writer:
    stats.output_files = list(writer.paths)
    for image in tqdm.tqdm(data['images'], unit='img',
                           disable=not show_progress,
                           desc=os.path.basename(output_path_prefix)):
      annotations = by_image.get(image['id'], [])
      loaded = _load_image(image, image_dir, annotations_file, stats)
      if loaded is None:
        for annotation in annotations:
          stats.skip_annotation(SKIP_IMAGE_NOT_WRITTEN, annotation.get('id'))
        continue
      example, num_written = _build_example(image, *loaded, annotations, names,
                                            include_masks, stats)
      writer.write(example)
      stats.images_written += 1
      stats.annotations_written += num_written
  if data['images'] and not stats.images_written:
    _raise_nothing_written(stats, data, annotations_file, image_dir)
  for line in stats.summary().splitlines():
    logging.info('%s: %s', os.path.basename(output_path_prefix), line)
  return stats
