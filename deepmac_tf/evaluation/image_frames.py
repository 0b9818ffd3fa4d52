"""Per-image groundtruth and detections in the original image frame.

The eval loop scores everything at the **original image resolution**, as
the OD API does (spec 5.4): COCO's small / medium / large ranges and the
groundtruth ``area`` (from the records) are in original pixels, so the
numbers are comparable with the OD API's and with COCO's own evaluation.

The input pipeline gives, per batch element, tensors of the padded model
input: boxes normalized to the padded input, masks [N, H_pad, W_pad], the
true (unpadded, resized) shape and the original shape. Here:

* groundtruth boxes: renormalized to the true image, then scaled by the
  original (H, W) -- the true image is the resized original, so normalized
  coordinates of the two agree;
* groundtruth masks: cropped to the true image and resized to the original
  size with nearest-neighbour sampling (what the OD API does);
* detection boxes: already normalized to the true image -> scaled by the
  original (H, W); detection masks: box-relative probabilities pasted with
  ``mask_pasting`` at the original size and thresholded at > 0.5.
"""

import numpy as np

from deepmac_tf.data.fields import InputFields as F
from deepmac_tf.ops import mask_pasting


def resize_nearest(masks, height, width):
  """[N, h, w] -> [N, height, width] nearest-neighbour (half-pixel centers).

  Source row of output row i: floor((i + 0.5) * h / height), as
  ``tf.image.resize(..., 'nearest')``.
  """
  masks = np.asarray(masks)
  h, w = masks.shape[1:3]
  if (h, w) == (height, width):
    return masks
  rows = np.minimum(((np.arange(height) + 0.5) * h / height).astype(np.int64),
                    h - 1)
  cols = np.minimum(((np.arange(width) + 0.5) * w / width).astype(np.int64),
                    w - 1)
  return masks[:, rows][:, :, cols]


def true_normalized_boxes(boxes, true_shape, padded_shape):
  """[N, 4] boxes normalized to the padded input -> to the true image."""
  th, tw = float(true_shape[0]), float(true_shape[1])
  ph, pw = float(padded_shape[0]), float(padded_shape[1])
  scale = np.array([ph / th, pw / tw, ph / th, pw / tw])
  return np.asarray(boxes, np.float64) * scale


def image_id(batch, index, fallback):
  """The example's ``source_id`` (str), or ``fallback`` when empty."""
  if F.SOURCE_ID in batch:
    value = batch[F.SOURCE_ID][index]
    value = value.decode('utf-8') if isinstance(value, bytes) else str(value)
    if value:
      return value
  return fallback


def groundtruth(batch, index):
  """One example's groundtruth, in the true and original frames.

  Args:
    batch: dict of numpy arrays keyed by ``InputFields`` (one eval batch).
    index: which batch element.

  Returns:
    dict: ``boxes`` [N, 4] normalized to the true image, ``absolute_boxes``
    [N, 4] original pixels, ``classes`` [N] (1-based), ``is_crowd`` [N],
    ``area`` [N] or None, ``masks`` [N, H_orig, W_orig] uint8 or None,
    ``true_masks`` [N, H_true, W_true] or None, ``true_shape`` (H, W),
    ``original_shape`` (H, W). Padding rows (class 0) are dropped.
  """
  padded_shape = batch[F.IMAGE].shape[1:3]
  true_shape = tuple(int(v) for v in batch[F.TRUE_IMAGE_SHAPE][index][:2])
  original_shape = (tuple(int(v) for v in
                          batch[F.ORIGINAL_IMAGE_SHAPE][index][:2])
                    if F.ORIGINAL_IMAGE_SHAPE in batch else true_shape)
  classes = np.asarray(batch[F.CLASSES][index]).astype(np.int64)
  valid = classes > 0
  if F.NUM_BOXES in batch:
    valid &= np.arange(len(classes)) < int(batch[F.NUM_BOXES][index])
  boxes = true_normalized_boxes(batch[F.BOXES][index][valid], true_shape,
                                padded_shape)
  oh, ow = original_shape
  result = {
      'boxes': boxes,
      'absolute_boxes': boxes * np.array([oh, ow, oh, ow], np.float64),
      'classes': classes[valid],
      'is_crowd': (np.asarray(batch[F.IS_CROWD][index])[valid].astype(bool)
                   if F.IS_CROWD in batch else np.zeros([valid.sum()], bool)),
      'area': None, 'masks': None, 'true_masks': None,
      'true_shape': true_shape, 'original_shape': original_shape,
  }
  if F.AREA in batch:
    area = np.asarray(batch[F.AREA][index], np.float64)[valid]
    if np.all(area > 0):
      result['area'] = area
  if F.INSTANCE_MASKS in batch:
    masks = np.asarray(batch[F.INSTANCE_MASKS][index])[valid]
    masks = (masks[:, :true_shape[0], :true_shape[1]] > 0.5).astype(np.uint8)
    result['true_masks'] = masks
    result['masks'] = resize_nearest(masks, oh, ow)
  return result


def paste_masks(box_masks, boxes, height, width):
  """[n, S, S] box-relative probabilities, [n, 4] normalized boxes ->
  [n, height, width] uint8 image masks (pasted probability > 0.5), numpy."""
  return mask_pasting.paste_box_masks(np.asarray(box_masks, np.float32),
                                      np.asarray(boxes, np.float32),
                                      int(height), int(width),
                                      threshold=0.5).numpy()


def detections(outputs, index, original_shape, with_masks=True):
  """One example's detections in original pixels.

  Args:
    outputs: dict of numpy arrays: ``detection_boxes`` [B, K, 4] normalized
      to the true image, ``detection_scores`` [B, K], ``detection_classes``
      [B, K] 0-based, ``num_detections`` [B], optional ``detection_masks``
      [B, K, S, S] box-relative probabilities.
    index: batch element.
    original_shape: (H, W) of the original image.
    with_masks: paste the masks (when present).

  Returns:
    dict: ``boxes`` [n, 4] normalized, ``absolute_boxes`` [n, 4],
    ``scores`` [n], ``classes`` [n] 1-based, ``masks`` [n, H, W] uint8 or
    None; n = num_detections.
  """
  count = int(outputs['num_detections'][index])
  boxes = np.asarray(outputs['detection_boxes'][index][:count], np.float64)
  oh, ow = original_shape
  result = {
      'boxes': boxes,
      'absolute_boxes': boxes * np.array([oh, ow, oh, ow], np.float64),
      'scores': np.asarray(outputs['detection_scores'][index][:count]),
      'classes': (np.asarray(outputs['detection_classes'][index][:count])
                  .astype(np.int64) + 1),
      'masks': None,
  }
  if with_masks and 'detection_masks' in outputs:
    result['masks'] = paste_masks(outputs['detection_masks'][index][:count],
                                  boxes, oh, ow)
  return result
