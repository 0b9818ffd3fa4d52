"""Collects per-image groundtruth and detections as COCO-format dicts.

Everything is numpy, in absolute pixels of one image frame chosen by the
caller (the eval loop uses the original image resolution, as the OD API).
Boxes come in the OD API order ``[ymin, xmin, ymax, xmax]`` and are stored
in COCO's ``[x, y, width, height]``; masks are RLE-encoded with
``pycocotools.mask.encode`` as soon as they arrive, so memory stays small.
"""

import numpy as np
from pycocotools import mask as mask_util

from deepmac_tf.errors import DataError


def boxes_to_coco(boxes):
  """[N, 4] ymin, xmin, ymax, xmax -> [N, 4] x, y, width, height (float)."""
  boxes = np.asarray(boxes, np.float64).reshape([-1, 4])
  return np.stack([boxes[:, 1], boxes[:, 0], boxes[:, 3] - boxes[:, 1],
                   boxes[:, 2] - boxes[:, 0]], axis=1)


def encode_masks(masks):
  """[N, H, W] binary masks -> list of N COCO RLE dicts (counts as str)."""
  masks = np.asfortranarray(np.asarray(masks) > 0, dtype=np.uint8)
  if masks.ndim != 3:
    raise DataError(f'masks must be [N, H, W], got shape {masks.shape}.')
  if masks.shape[0] == 0:
    return []
  rles = mask_util.encode(np.asfortranarray(masks.transpose(1, 2, 0)))
  for rle in rles:
    rle['counts'] = rle['counts'].decode('ascii')
  return rles


def _check_count(name, array, count, image_id):
  if array is not None and len(array) != count:
    raise DataError(f'image {image_id!r}: {name} has {len(array)} rows, '
                    f'boxes have {count}.')


class CocoAccumulator:
  """Accumulates one dataset's groundtruth and detections, image by image.

  ``groundtruth_dataset()`` and ``detection_results()`` give what
  ``pycocotools.coco.COCO`` and ``COCO.loadRes`` take. Image ids may be any
  hashable value (e.g. the ``source_id`` string); they are mapped to
  consecutive integers. An image added twice keeps its first version (the
  OD API ignores repeated ids too, so a dataset read twice does not count
  twice).
  """

  def __init__(self, categories):
    """Args: categories: list of ``{'id': int (1-based), 'name': str}``."""
    self._categories = [{'id': int(c['id']), 'name': str(c['name'])}
                        for c in categories]
    self._category_ids = {c['id'] for c in self._categories}
    self._image_index = {}
    self._images = []
    self._gt = []
    self._dt = []
    self._with_detections = set()
    self.has_groundtruth_masks = None
    self.has_detection_masks = None

  @property
  def categories(self):
    return list(self._categories)

  @property
  def num_images(self):
    return len(self._images)

  def _index(self, image_id):
    return self._image_index.get(image_id)

  def add_groundtruth(self, image_id, boxes, classes, masks=None,
                      is_crowd=None, area=None, image_size=None):
    """Adds one image's groundtruth.

    Args:
      image_id: hashable id of the image.
      boxes: [N, 4] absolute ymin, xmin, ymax, xmax pixels.
      classes: [N] 1-based label-map ids (ids not in the categories raise).
      masks: optional [N, H, W] uint8 / bool binary masks.
      is_crowd: optional [N] bool; crowd instances become COCO ignore
        regions (``iscrowd=1``).
      area: optional [N] areas in pixels (e.g. the COCO annotations'); by
        default the mask area when masks are given, else the box area. COCO
        uses it for the small / medium / large ranges.
      image_size: optional (H, W); by default the masks' size.

    Returns:
      True, or False when the image id was already added (nothing changes).

    Raises:
      DataError: inconsistent shapes, unknown class ids, or mixing images
        with and without masks.
    """
    if self._index(image_id) is not None:
      return False
    boxes = np.asarray(boxes, np.float64).reshape([-1, 4])
    classes = np.asarray(classes).reshape([-1]).astype(np.int64)
    count = len(boxes)
    _check_count('classes', classes, count, image_id)
    _check_count('masks', masks, count, image_id)
    _check_count('is_crowd', is_crowd, count, image_id)
    _check_count('area', area, count, image_id)
    unknown = sorted(set(classes.tolist()) - self._category_ids)
    if unknown:
      raise DataError(f'image {image_id!r}: groundtruth class ids {unknown} '
                      'are not in the label map.')
    has_masks = masks is not None
    if self.has_groundtruth_masks is None:
      self.has_groundtruth_masks = has_masks
    elif self.has_groundtruth_masks != has_masks:
      raise DataError(f'image {image_id!r}: groundtruth masks given for some '
                      'images only.')
    if image_size is None and has_masks:
      image_size = np.asarray(masks).shape[1:3]
    height, width = (int(v) for v in (image_size or (0, 0)))
    index = len(self._images) + 1
    self._image_index[image_id] = index
    self._images.append({'id': index, 'height': height, 'width': width,
                         'source_id': str(image_id)})
    coco_boxes = boxes_to_coco(boxes)
    rles = encode_masks(masks) if has_masks else None
    if area is None:
      if has_masks:
        area = mask_util.area(rles) if rles else np.zeros([0])
      else:
        area = coco_boxes[:, 2] * coco_boxes[:, 3]
    crowd = (np.zeros([count], bool) if is_crowd is None
             else np.asarray(is_crowd).reshape([-1]).astype(bool))
    for i in range(count):
      annotation = {
          'id': len(self._gt) + 1, 'image_id': index,
          'category_id': int(classes[i]), 'bbox': coco_boxes[i].tolist(),
          'area': float(area[i]), 'iscrowd': int(crowd[i])}
      if has_masks:
        annotation['segmentation'] = rles[i]
      self._gt.append(annotation)
    return True

  def add_detections(self, image_id, boxes, scores, classes, masks=None):
    """Adds one image's detections (after its groundtruth).

    Args:
      image_id: id given to ``add_groundtruth``.
      boxes: [K, 4] absolute ymin, xmin, ymax, xmax pixels.
      scores: [K] confidences.
      classes: [K] 1-based label-map ids; ids outside the label map are
        dropped (they cannot match any groundtruth).
      masks: optional [K, H, W] uint8 binary masks, image-sized.

    Raises:
      DataError: unknown image, detections added twice, bad shapes.
    """
    index = self._index(image_id)
    if index is None:
      raise DataError(f'image {image_id!r}: detections added before its '
                      'groundtruth.')
    if index in self._with_detections:
      return
    self._with_detections.add(index)
    boxes = np.asarray(boxes, np.float64).reshape([-1, 4])
    scores = np.asarray(scores, np.float64).reshape([-1])
    classes = np.asarray(classes).reshape([-1]).astype(np.int64)
    count = len(boxes)
    _check_count('scores', scores, count, image_id)
    _check_count('classes', classes, count, image_id)
    _check_count('masks', masks, count, image_id)
    has_masks = masks is not None
    if self.has_detection_masks is None:
      self.has_detection_masks = has_masks
    elif self.has_detection_masks != has_masks:
      raise DataError(f'image {image_id!r}: detection masks given for some '
                      'images only.')
    rles = encode_masks(masks) if has_masks else None
    coco_boxes = boxes_to_coco(boxes)
    for i in range(count):
      if int(classes[i]) not in self._category_ids:
        continue
      result = {'image_id': index, 'category_id': int(classes[i]),
                'bbox': coco_boxes[i].tolist(), 'score': float(scores[i])}
      if has_masks:
        result['segmentation'] = rles[i]
      self._dt.append(result)

  def groundtruth_dataset(self):
    """The COCO groundtruth dict: images, annotations, categories."""
    return {'images': [dict(i) for i in self._images],
            'annotations': [dict(a) for a in self._gt],
            'categories': self.categories}

  def detection_results(self):
    """The COCO results list (``COCO.loadRes`` input)."""
    return [dict(d) for d in self._dt]
