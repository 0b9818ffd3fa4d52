"""Overlay drawing: masks, boxes, class names and scores on an image."""

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

# Distinct, saturated colours (RGB); class id (or instance index) picks one.
PALETTE = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
    (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230),
    (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195),
)


def _color(detections, index):
  class_id = int(detections.classes[index])
  key = class_id if class_id > 0 else index
  return PALETTE[key % len(PALETTE)]


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
  out_size = (int(round(width * scale)), int(round(height * scale)))
  canvas = np.asarray(Image.fromarray(image).resize(
      out_size, Image.BILINEAR), np.float32) if scale > 1 else (
          image.astype(np.float32))
  if detections.masks is not None:
    for index in range(len(detections)):
      mask = detections.masks[index]
      if scale > 1:
        mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(
            out_size, Image.NEAREST)) > 127
      color = np.array(_color(detections, index), np.float32)
      canvas[mask] = (1.0 - alpha) * canvas[mask] + alpha * color
  overlay = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
  draw = ImageDraw.Draw(overlay)
  font = ImageFont.load_default()
  boxes = detections.pixel_boxes() * scale
  for index in range(len(detections)):
    color = _color(detections, index)
    ymin, xmin, ymax, xmax = [float(v) for v in boxes[index]]
    if draw_boxes:
      draw.rectangle([xmin, ymin, xmax, ymax], outline=color,
                     width=max(1, int(round(scale))))
    if draw_labels:
      text = _label(detections, index, prompted)
      left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
      text_w, text_h = right - left, bottom - top
      y = ymin - text_h - 4 if ymin - text_h - 4 >= 0 else ymin
      draw.rectangle([xmin, y, xmin + text_w + 4, y + text_h + 4], fill=color)
      draw.text((xmin + 2, y + 2 - top), text, fill=(0, 0, 0), font=font)
  return np.asarray(overlay)


def save_overlay(path, overlay):
  """Writes an overlay array as PNG (or any format PIL infers from path)."""
  Image.fromarray(np.asarray(overlay, np.uint8)).save(path)
  return path
