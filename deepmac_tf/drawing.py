"""Drawing masks, boxes and labels on images: the one implementation behind
the input preview (``data.preview``), the evaluation image summaries
(``evaluation.visualization``) and the inference overlays
(``inference.visualization``). numpy + PIL only (no TensorFlow).

Each caller decides what to draw (which instances, colours, label texts);
this module decides how: masks blended at ``alpha`` in the instance's colour,
box outlines, labels at the box's top-left corner, optional upscaling for
legible labels on small images.
"""

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

# Distinct, saturated colours (RGB); a class id (or instance index) picks one.
PALETTE = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
    (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230),
    (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (255, 250, 200), (128, 0, 0), (170, 255, 195),
)


def class_color(key):
  """The palette colour of a class id (or any integer key)."""
  return PALETTE[int(key) % len(PALETTE)]


def _resize(array, size, resample):
  return np.asarray(Image.fromarray(array).resize(size, resample))


def draw_instances(image, boxes, colors, masks=None, labels=None, alpha=0.5,
                   scale=1.0, smooth=False, line_width=1, draw_boxes=True,
                   label_background=False):
  """Draws instances over one image.

  Args:
    image: [H, W, 3] float (0..255) or uint8 image.
    boxes: [N, 4] normalized ymin, xmin, ymax, xmax.
    colors: N RGB tuples, one per instance.
    masks: optional [N, H, W] masks (> 0.5 is inside), or a length-N
      sequence whose None entries draw no mask; blended in list order.
    labels: optional N strings (None or '' draws none).
    alpha: mask opacity.
    scale: upsampling factor of the output (>= 1).
    smooth: bilinear image upsampling (else nearest-neighbour); masks are
      always upsampled nearest-neighbour.
    line_width: box outline width in output pixels.
    draw_boxes: draw box outlines.
    label_background: labels in black on a box of the instance's colour
      (else in the instance's colour on the image).

  Returns:
    [round(H * scale), round(W * scale), 3] uint8.
  """
  canvas = np.clip(np.asarray(image, np.float32), 0, 255)
  height, width = canvas.shape[:2]
  out_size = (int(round(width * scale)), int(round(height * scale)))
  if out_size != (width, height):
    canvas = _resize(canvas.astype(np.uint8), out_size,
                     Image.BILINEAR if smooth else Image.NEAREST).astype(
                         np.float32)
  if masks is not None:
    for index, mask in enumerate(masks):
      if mask is None:
        continue
      inside = np.asarray(mask) > 0.5
      if out_size != (width, height):
        inside = _resize(inside.astype(np.uint8) * 255, out_size,
                         Image.NEAREST) > 127
      color = np.array(colors[index], np.float32)
      canvas[inside] = (1.0 - alpha) * canvas[inside] + alpha * color
  picture = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
  draw = ImageDraw.Draw(picture)
  font = ImageFont.load_default()
  out_width, out_height = out_size
  pixel_boxes = np.asarray(boxes, np.float32).reshape([-1, 4]) * [
      out_height, out_width, out_height, out_width]
  for index, (ymin, xmin, ymax, xmax) in enumerate(pixel_boxes.tolist()):
    color = tuple(colors[index])
    if draw_boxes:
      draw.rectangle([xmin, ymin, xmax, ymax], outline=color,
                     width=line_width)
    text = labels[index] if labels is not None else None
    if not text:
      continue
    if label_background:
      left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
      text_w, text_h = right - left, bottom - top
      y = ymin - text_h - 4 if ymin - text_h - 4 >= 0 else ymin
      draw.rectangle([xmin, y, xmin + text_w + 4, y + text_h + 4], fill=color)
      draw.text((xmin + 2, y + 2 - top), text, fill=(0, 0, 0), font=font)
    else:
      draw.text((xmin + 1, ymin), text, fill=color, font=font)
  return np.asarray(picture)


def tile_images(images, columns):
  """Tiles equally sized [h, w, 3] uint8 images into one grid image (2-pixel
  grey gutters)."""
  images = list(images)
  if not images:
    raise ValueError('No images to tile.')
  height, width = images[0].shape[:2]
  rows = (len(images) + columns - 1) // columns
  grid = np.full([rows * (height + 2), columns * (width + 2), 3], 90, np.uint8)
  for index, picture in enumerate(images):
    r, c = divmod(index, columns)
    grid[r * (height + 2):r * (height + 2) + height,
         c * (width + 2):c * (width + 2) + width] = picture
  return grid


def save_image(path, image):
  """Writes a uint8 [H, W, 3] array as PNG (or the format PIL infers from
  the path); returns the path."""
  Image.fromarray(np.asarray(image, np.uint8)).save(path)
  return path
