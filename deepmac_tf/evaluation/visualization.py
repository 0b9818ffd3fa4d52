"""Eval image summaries: predicted boxes and masks beside the groundtruth.

Drawn with numpy + PIL (no TensorFlow), in the true (resized, unpadded)
image frame the model saw. Left: detections scoring at least
``eval_config.min_score_threshold`` (at most ``max_num_boxes_to_visualize``),
with class names and scores; when none does (a young model), the
``FALLBACK_TOP_K`` highest-scoring ones instead, so the picture still shows
what the model finds (their scores say how far below the threshold); right:
the groundtruth (``preview``'s drawing: green = instances with a mask,
orange = box only).
"""

import numpy as np

from deepmac_tf import drawing
from deepmac_tf.data import preview

_MASK_ALPHA = 0.5
FALLBACK_TOP_K = 3


def detections_to_draw(scores, min_score=0.5, max_boxes=20,
                       fallback_top_k=FALLBACK_TOP_K):
  """Indices of the detections to draw, highest score first: those scoring
  at least ``min_score`` (at most ``max_boxes``), or, when none does, the
  ``fallback_top_k`` highest (never more than ``max_boxes``)."""
  scores = np.asarray(scores).reshape([-1])
  order = [int(i) for i in np.argsort(-scores, kind='stable')]
  passing = [i for i in order if scores[i] >= min_score][:max_boxes]
  if passing:
    return passing
  return order[:min(fallback_top_k, max_boxes)]


def draw_detections(image, boxes, classes, scores, masks=None,
                    category_index=None, min_score=0.5, max_boxes=20,
                    scale=1, fallback_top_k=FALLBACK_TOP_K):
  """Draws detections over one image.

  Args:
    image: [H, W, 3] float (0..255) or uint8 image.
    boxes: [K, 4] normalized ymin, xmin, ymax, xmax.
    classes: [K] 1-based class ids.
    scores: [K] confidences, sorted or not.
    masks: optional [K, H, W] binary image masks.
    category_index: optional ``{id: {'name': ...}}``.
    min_score: detections below are not drawn (unless none reaches it:
      ``detections_to_draw``).
    max_boxes: at most this many (the highest scores).
    scale: integer nearest-neighbour upsampling, for legible labels.
    fallback_top_k: drawn when no detection reaches ``min_score``.

  Returns:
    [H * scale, W * scale, 3] uint8.
  """
  scores = np.asarray(scores).reshape([-1])
  order = detections_to_draw(scores, min_score, max_boxes, fallback_top_k)
  order = order[::-1]  # the highest score drawn last, on top
  labels = []
  for i in order:
    name = str(int(classes[i]))
    if category_index and int(classes[i]) in category_index:
      name = category_index[int(classes[i])]['name']
    labels.append(f'{name} {scores[i]:.2f}')
  return drawing.draw_instances(
      image, np.asarray(boxes, np.float32).reshape([-1, 4])[order],
      [drawing.class_color(classes[i]) for i in order],
      None if masks is None else [masks[i] for i in order], labels,
      alpha=_MASK_ALPHA, scale=scale)


def side_by_side(image, detections, groundtruth, category_index=None,
                 min_score=0.5, max_boxes=20, scale=2):
  """[H*s, 2*W*s + 2, 3] uint8: detections left, groundtruth right.

  Args:
    image: [H, W, 3] true (unpadded) image.
    detections: dict with ``boxes`` [K, 4] normalized to the image,
      ``classes`` [K] 1-based, ``scores`` [K], optional ``masks``
      [K, H, W] binary.
    groundtruth: dict with ``boxes`` [N, 4] normalized, ``classes`` [N],
      optional ``masks`` [N, H, W].
    category_index / min_score / max_boxes / scale: see ``draw_detections``.
  """
  left = draw_detections(image, detections['boxes'], detections['classes'],
                         detections['scores'], detections.get('masks'),
                         category_index, min_score, max_boxes, scale)
  count = len(groundtruth['classes'])
  masks = groundtruth.get('masks')
  right = preview.draw_groundtruth(
      image, groundtruth['boxes'], groundtruth['classes'], np.ones([count]),
      masks, np.ones([count]) if masks is not None else None,
      category_index, scale)
  return drawing.tile_images([left, right], columns=2)
