"""Offline pseudo labels: masks from a box-prompted export for the
groundtruth boxes of chosen classes, written back into a COCO json (the
first stage of Deep-MAC's two-stage recipe, paper appendix B.2: pseudo masks
for the unseen classes, then a fully supervised model trained on them).

For every image of the input json, the export's ``image_and_boxes_tensor``
signature segments the groundtruth boxes of the chosen classes in one call;
the pasted probabilities go through the pseudo-mask rules
(``ops.pseudo_masks``: p >= 0.5, pixels of other seen-class instances'
groundtruth masks and pixels outside the box are background) and replace
those annotations' ``segmentation`` (compressed RLE). Everything else of the
json is copied unchanged: other annotations, crowd annotations, images,
categories, extra keys.

Bad input never disappears silently: an image that cannot be read, has
another size than the json says, or makes the model fail is named and
skipped (its annotations stay as they were); so is an annotation with a
malformed, empty or out-of-image box. Both are counted in the returned
``PseudoLabelStats``. Results are kept in ``OUT.partial/`` while the job
runs (``resumable_results``), so an interrupted run resumes.
"""

import dataclasses
import os
from typing import Dict, List

from absl import logging
import numpy as np
import tqdm

from deepmac_tf import config as config_lib
from deepmac_tf.config import model_spec
from deepmac_tf.config.config_util import PIPELINE_CONFIG_NAME
from deepmac_tf.data import coco_conversion
from deepmac_tf.errors import ConfigError
from deepmac_tf.errors import DataError
from deepmac_tf.inference import coco_results
from deepmac_tf.inference import image_io
from deepmac_tf.inference import predictor as predictor_lib
from deepmac_tf.inference import resumable_results
from deepmac_tf.ops import pseudo_masks

UNSEEN = 'unseen'
ALL = 'all'
SKIP_IMAGE_UNREADABLE = 'unreadable_image'
SKIP_IMAGE_SIZE_MISMATCH = 'image_size_differs_from_json'
SKIP_IMAGE_MODEL_FAILED = 'model_failed'
SKIP_UNKNOWN_IMAGE = 'unknown_image_id'
_EXAMPLES = 5


@dataclasses.dataclass
class PseudoLabelStats:
  """What a pseudo-labelling run did (earlier runs it resumed included).

  Attributes:
    classes: the chosen class ids.
    seen_class_ids: the model's seen classes (None: unknown).
    images: images in the json.
    images_resumed: images finished by an earlier, interrupted run.
    images_skipped: ``{file name: reason}``.
    annotations_labelled: annotations whose mask is now the model's.
    empty_masks: of those, masks left with no pixel by the rules.
    annotations_skipped: ``{reason: count}`` (boxes, unknown images, ...).
    skipped_annotation_examples: ``{reason: [up to 5 annotation ids]}``.
    crowd_kept: crowd annotations of the chosen classes, left unchanged.
  """
  classes: List[int]
  seen_class_ids: object
  images: int = 0
  images_resumed: int = 0
  images_skipped: Dict[str, str] = dataclasses.field(default_factory=dict)
  annotations_labelled: int = 0
  empty_masks: int = 0
  annotations_skipped: Dict[str, int] = dataclasses.field(
      default_factory=dict)
  skipped_annotation_examples: Dict[str, list] = dataclasses.field(
      default_factory=dict)
  crowd_kept: int = 0

  def skip_annotation(self, reason, annotation_id):
    self.annotations_skipped[reason] = self.annotations_skipped.get(
        reason, 0) + 1
    examples = self.skipped_annotation_examples.setdefault(reason, [])
    if len(examples) < _EXAMPLES:
      examples.append(annotation_id)

  def summary(self):
    """A few human-readable lines."""
    lines = [f'{self.annotations_labelled} annotation(s) of classes '
             f'{self.classes} got model masks in {self.images} image(s) '
             f'({self.images_resumed} resumed from an earlier run); '
             f'{self.empty_masks} of the masks are empty.']
    if self.images_skipped:
      named = ', '.join(f'{name} ({why})'
                        for name, why in sorted(self.images_skipped.items()))
      lines.append(f'{len(self.images_skipped)} image(s) skipped, their '
                   f'annotations unchanged: {named}')
    for reason, count in sorted(self.annotations_skipped.items()):
      ids = ', '.join(str(i) for i in
                      self.skipped_annotation_examples.get(reason, []))
      lines.append(f'{count} annotation(s) skipped ({reason}), unchanged; '
                   f'e.g. ids: {ids}')
    if self.crowd_kept:
      lines.append(f'{self.crowd_kept} crowd annotation(s) of the chosen '
                   'classes kept unchanged.')
    return '\n'.join(lines)


def export_pipeline_config(saved_model_dir):
  """``pipeline.config`` written by the exporter beside ``saved_model/``
  (or inside the folder given), or None."""
  path = os.path.abspath(os.fspath(saved_model_dir))
  for folder in (path, os.path.dirname(path)):
    candidate = os.path.join(folder, PIPELINE_CONFIG_NAME)
    if os.path.isfile(candidate):
      return candidate
  return None


def model_seen_class_ids(saved_model_dir):
  """The export's seen classes (``allowed_masked_classes_ids`` of its
  pipeline config; all classes when that list is empty).

  Returns:
    tuple of ids (empty: every class had masks), or None when the export
    has no pipeline config.

  Raises:
    ConfigError: the pipeline config beside the export does not parse.
  """
  path = export_pipeline_config(saved_model_dir)
  if path is None:
    return None
  configs = config_lib.get_configs_from_pipeline_file(path)
  return model_spec.from_configs(configs).seen_class_ids


def choose_classes(spec, category_ids, seen_class_ids, flag='--classes'):
  """Class ids to pseudo-label.

  Args:
    spec: ``'unseen'``, ``'all'`` or comma-separated ids.
    category_ids: ids of the json's categories.
    seen_class_ids: the model's seen ids (empty: all seen; None: unknown).
    flag: what to call ``spec`` in errors.

  Returns:
    sorted list of ids.

  Raises:
    DataError: unknown ids, an empty choice, or 'unseen' when the model's
      seen classes are unknown or cover every class.
  """
  category_ids = sorted(set(int(i) for i in category_ids))
  spec = str(spec or UNSEEN).strip()
  if spec.lower() == ALL:
    chosen = category_ids
  elif spec.lower() == UNSEEN:
    if seen_class_ids is None:
      raise DataError(f'{flag}=unseen: the export has no pipeline.config '
                      'beside saved_model/, so its seen classes are unknown; '
                      'pass --classes all or a list of ids.')
    chosen = [i for i in category_ids if i not in set(seen_class_ids)]
    if not seen_class_ids or not chosen:
      raise DataError(f'{flag}=unseen: the model was trained with masks of '
                      'every class of the json (allowed_masked_classes_ids '
                      f'{list(seen_class_ids) or "empty = all"}); there are no '
                      'unseen classes. Pass --classes all or a list of ids.')
  else:
    try:
      chosen = sorted({int(v) for v in spec.split(',') if v.strip()})
    except ValueError:
      raise DataError(f'{flag}: expected "unseen", "all" or comma-separated '
                      f'class ids, got {spec!r}.') from None
    unknown = [i for i in chosen if i not in category_ids]
    if unknown or not chosen:
      raise DataError(f'{flag}: {unknown or spec!r} not among the json\'s '
                      f'category ids {category_ids}.')
  return chosen


def _group_annotations(data, stats):
  """{image id: [(index in data['annotations'], annotation)]}."""
  known = {image['id'] for image in data['images']}
  chosen = set(stats.classes)
  by_image = {}
  for index, annotation in enumerate(data['annotations']):
    if not isinstance(annotation, dict):
      continue
    image_id = annotation.get('image_id')
    if not isinstance(image_id, (int, str)) or image_id not in known:
      if annotation.get('category_id') in chosen:
        stats.skip_annotation(SKIP_UNKNOWN_IMAGE, annotation.get('id'))
      continue
    by_image.setdefault(image_id, []).append((index, annotation))
  return by_image


def _obstacles(annotations, seen, height, width):
  """[N, H, W] groundtruth masks and [N] seen flags for rule 2: non-crowd
  instances of seen classes with a decodable mask."""
  masks, is_seen = [], []
  for _, annotation in annotations:
    mask = np.zeros([height, width], np.uint8)
    usable = (annotation.get('category_id') in seen and
              not annotation.get('iscrowd') and annotation.get('segmentation'))
    if usable:
      try:
        mask = coco_conversion.decode_segmentation(
            annotation['segmentation'], height, width)
      except DataError as e:
        logging.warning('Annotation %s: seen-class mask not used (%s).',
                        annotation.get('id'), e)
        usable = False
    masks.append(mask)
    is_seen.append(bool(usable))
  return np.stack(masks), np.asarray(is_seen, bool)


def label_image(predictor, image, image_entry, annotations, stats, seen,
                rule=pseudo_masks.THRESHOLD):
  """Pseudo masks for one image's chosen annotations.

  Args:
    predictor: ``DeepMacPredictor`` with a box-prompted signature.
    image: uint8 [H, W, 3].
    image_entry: the json's image dict.
    annotations: [(index, annotation)] of the image (all classes).
    stats: ``PseudoLabelStats`` (chosen classes; skips are counted here).
    seen: set of seen class ids (rule 2's obstacles).
    rule: pseudo-mask rule.

  Returns:
    dict ``{'masks': [[annotation index, RLE], ...], 'skipped':
    [[annotation id, reason], ...], 'crowd': count}``.
  """
  height, width = image.shape[:2]
  chosen = set(stats.classes)
  rows, boxes, classes, indices, skipped, crowd = [], [], [], [], [], 0
  for row, (index, annotation) in enumerate(annotations):
    if annotation.get('category_id') not in chosen:
      continue
    if annotation.get('iscrowd'):
      crowd += 1
      continue
    box, reason = coco_conversion.checked_box(annotation, height, width)
    if reason:
      skipped.append([annotation.get('id'), reason])
      continue
    rows.append(row)
    boxes.append(box)
    classes.append(int(annotation['category_id']))
    indices.append(index)
  record = {'masks': [], 'skipped': skipped, 'crowd': crowd, 'empty': 0}
  if not rows:
    return record
  boxes = np.asarray(boxes, np.float32)
  # Class-specific exports (teacher-student students, MaskX) segment each
  # box on its class's channel.
  found = predictor.segment(image, boxes, classes=classes)
  if found.mask_probabilities is None:
    raise DataError(f'{predictor.saved_model_dir}: the box-prompted '
                    'signature returns no detection_masks.')
  gt_masks, is_seen = _obstacles(annotations, seen, height, width)
  masks = pseudo_masks.pseudo_masks_in_image(
      found.mask_probabilities, boxes, gt_masks, is_seen, rows, rule).numpy()
  for index, mask in zip(indices, masks):
    record['masks'].append([index, coco_results.encode_mask(mask > 0.5)])
    record['empty'] += int(not mask.any())
  return record


def _image_or_reason(image_entry, image_dir):
  path = os.path.join(image_dir, image_entry['file_name'])
  try:
    image = image_io.load_image(path, name=image_entry['file_name'])
  except DataError as e:
    return None, f'{SKIP_IMAGE_UNREADABLE}: {e}'
  if image.shape[:2] != (image_entry['height'], image_entry['width']):
    return None, (f'{SKIP_IMAGE_SIZE_MISMATCH}: {image.shape[0]}x'
                  f'{image.shape[1]} (HxW), json says {image_entry["height"]}'
                  f'x{image_entry["width"]}')
  return image, None


def _count(record, stats, image_entry):
  if record.get('image_skipped'):
    stats.images_skipped[image_entry['file_name']] = record['image_skipped']
    return
  for annotation_id, reason in record['skipped']:
    stats.skip_annotation(reason, annotation_id)
  stats.crowd_kept += record['crowd']
  stats.annotations_labelled += len(record['masks'])
  stats.empty_masks += record['empty']


def pseudo_label(saved_model_dir, input_annotations, image_dir,
                 output_annotations, classes=UNSEEN,
                 rule=pseudo_masks.THRESHOLD, save_every_n=100,
                 show_progress=True):
  """Runs the whole job (see the module doc); resumes an interrupted run.

  Args:
    saved_model_dir: the export (folder or its ``saved_model``).
    input_annotations: COCO json with groundtruth boxes.
    image_dir: folder of the json's ``file_name`` entries.
    output_annotations: the COCO json to write.
    classes: ``'unseen'`` (classes without masks in the model's training),
      ``'all'`` or comma-separated ids.
    rule: ``THRESHOLD`` (one model gives one mask head's probabilities;
      ``INTERACTION`` needs a teacher and a student and is refused).
    save_every_n: images per saved chunk of partial results.
    show_progress: tqdm progress bar.

  Returns:
    ``PseudoLabelStats``.

  Raises:
    DataError / ConfigError: bad json, folder, export, classes or rule.
  """
  try:
    rule = pseudo_masks.check_rule(rule, '--rule')
  except ValueError as e:
    raise ConfigError(str(e)) from None
  if rule != pseudo_masks.THRESHOLD:
    raise ConfigError(f'--rule {rule}: an export runs one mask head, and '
                      'INTERACTION averages a teacher and a student; use '
                      'THRESHOLD.')
  data = coco_conversion.load_coco_json(input_annotations)
  if not os.path.isdir(image_dir):
    raise DataError(f'--image_dir: {image_dir} is not a folder.')
  if not os.path.isdir(saved_model_dir):
    raise DataError(f'--saved_model_dir: {saved_model_dir} is not a folder.')
  seen = model_seen_class_ids(saved_model_dir)
  category_ids = [c['id'] for c in data['categories']
                  if isinstance(c, dict) and isinstance(c.get('id'), int)]
  stats = PseudoLabelStats(
      classes=choose_classes(classes, category_ids, seen),
      seen_class_ids=None if seen is None else list(seen),
      images=len(data['images']))
  predictor = predictor_lib.DeepMacPredictor(saved_model_dir)
  if not predictor.can_segment_boxes:
    raise DataError(f'{predictor.saved_model_dir}: no box-prompted '
                    '(image_and_boxes_tensor) signature; export the model '
                    'with scripts/exporter_main_v2.py (every input type '
                    'adds it to a mask model).')
  seen_set = set(category_ids if seen == () else (seen or ()))
  if seen is None:
    # Without the model's split, the classes kept as they are count as seen.
    seen_set = set(category_ids) - set(stats.classes)
  results = resumable_results.ResumableResults(
      output_annotations,
      {'input_annotations': os.path.abspath(input_annotations),
       'input_sha256': resumable_results.file_sha256(input_annotations),
       'image_dir': os.path.abspath(image_dir),
       'saved_model_dir': predictor.saved_model_dir,
       'classes': stats.classes, 'rule': rule},
      save_every_n=save_every_n)
  done = results.load()
  stats.images_resumed = len(done)
  by_image = _group_annotations(data, stats)
  try:
    for image_entry in tqdm.tqdm(data['images'], unit='img',
                                 disable=not show_progress,
                                 desc='pseudo labels'):
      record = done.get(image_entry['id'])
      if record is None:
        record = _label_one(predictor, image_entry, image_dir,
                            by_image.get(image_entry['id'], []), stats,
                            seen_set, rule)
        results.add(image_entry['id'], record)
        done[image_entry['id']] = record
      _count(record, stats, image_entry)
  finally:
    results.flush()
  for record in done.values():
    for index, rle in record.get('masks', []):
      data['annotations'][index]['segmentation'] = rle
  resumable_results.write_json_atomically(output_annotations, data)
  results.remove()
  return stats


def _label_one(predictor, image_entry, image_dir, annotations, stats, seen,
               rule):
  image, reason = _image_or_reason(image_entry, image_dir)
  if reason is None:
    try:
      return label_image(predictor, image, image_entry, annotations, stats,
                         seen, rule)
    except DataError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      # One image the model cannot take (TF raises many error types) must
      # not end a long run; it is named and skipped.
      first_line = (str(e).strip().splitlines() or [''])[0]
      reason = f'{SKIP_IMAGE_MODEL_FAILED}: {type(e).__name__}: {first_line}'
  logging.warning('Skipping image %s: %s', image_entry['file_name'], reason)
  return {'image_skipped': reason}
