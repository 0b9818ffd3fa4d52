"""Overlay drawing: masks, boxes, class names and scores on an image."""

import numpy as np

from deepmac_tf import drawing


def _color(detections, index):
  class_id = int(detections.classes[index])
  return drawing.class_color(class_id if class_id > 0 else index)


def _label(detections, index, prompted):
  name = detections.class_names[index]
  if prompted:
    return name or f'box {index + 1}'
  return f'{name}: {int(round(100 * float(detections.scores[index])))}%'


def draw_overlay(image, detections, alpha=0.5, min_size=0, prompted=False,
                 draw_boxes=True, draw_labels=True):
  """Draws detections on an image.

  Args:
    image: uint8 [H, W, 3] (the image the detections belong to).
    detections: ``predictor.Detections`` (masks at H x W or None).
    alpha: mask opacity.
    min_size: upscale so the shorter side is at least this many pixels
      (small images get readable labels); 0 keeps the size.
    prompted: label given boxes by name / number instead of score.
    draw_boxes: draw box outlines.
    draw_labels: draw class names (and scores).

  Returns:
    uint8 [H', W', 3] overlay (H' = H unless upscaled).
  """
  image = np.asarray(image, np.uint8)
  height, width = image.shape[:2]
  scale = max(1.0, float(min_size) / min(height, width)) if min_size else 1.0
  count = len(detections)
  labels = ([_label(detections, i, prompted) for i in range(count)]
            if draw_labels else None)
  return drawing.draw_instances(
      image, np.asarray(detections.boxes, np.float32).reshape([-1, 4]),
      [_color(detections, i) for i in range(count)], detections.masks,
      labels, alpha=alpha, scale=scale, smooth=True,
      line_width=max(1, int(round(scale))), draw_boxes=draw_boxes,
      label_background=True)


save_overlay = drawing.save_image
