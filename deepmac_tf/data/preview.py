"""Draws groundtruth batches (images, boxes, masks) for a quick visual check.

Used by the demo and handy in notebooks: it shows what the model will be fed
after decoding, augmentation, resizing and padding, including which instances
carry mask supervision (partial supervision) and which only have a box.
"""

import numpy as np

from deepmac_tf import drawing

# Instances whose mask trains the mask head: green; box only: orange.
SUPERVISED_COLOR = (40, 220, 70)
BOX_ONLY_COLOR = (255, 150, 0)
_MASK_ALPHA = 0.45


def draw_groundtruth(image, boxes, classes, weights, masks=None,
                     mask_weights=None, category_index=None, scale=1):
  """Draws one padded groundtruth example.

  Args:
    image: [height, width, 3] float or uint8 image, values 0..255.
    boxes: [num_boxes, 4] normalized (ymin, xmin, ymax, xmax).
    classes: [num_boxes] 1-based class ids.
    weights: [num_boxes]; rows with weight 0 (padding) are skipped.
    masks: optional [num_boxes, height, width] 0/1 masks.
    mask_weights: optional [num_boxes]; 1 where the mask supervises training.
    category_index: optional ``{id: {'name': ...}}`` for labels.
    scale: integer upsampling factor (nearest neighbour), for legible labels
      on small images.

  Returns:
    [height * scale, width * scale, 3] uint8 image.
  """
  num = len(classes)
  if mask_weights is None:
    mask_weights = np.zeros([num], np.float32)
  shown = [i for i in range(num) if weights[i] > 0]
  colors = [SUPERVISED_COLOR if mask_weights[i] > 0 else BOX_ONLY_COLOR
            for i in shown]
  drawn_masks = None
  if masks is not None:
    drawn_masks = [masks[i] if mask_weights[i] > 0 else None for i in shown]
  labels = [category_index[int(classes[i])]['name']
            if category_index and int(classes[i]) in category_index else None
            for i in shown]
  return drawing.draw_instances(
      image, np.asarray(boxes, np.float32).reshape([-1, 4])[shown], colors,
      drawn_masks, labels, alpha=_MASK_ALPHA, scale=scale)


def draw_batch(batch, category_index=None, max_images=16, columns=4, scale=2):
  """Draws up to ``max_images`` examples of an input-pipeline batch.

  Args:
    batch: a dict of numpy arrays keyed by ``fields.InputFields``.
    category_index: optional ``{id: {'name': ...}}``.
    max_images: how many examples to draw.
    columns: grid columns.
    scale: integer upsampling factor of each example.

  Returns:
    A uint8 grid image.
  """
  from deepmac_tf.data.fields import InputFields as F  # pylint: disable=g-import-not-at-top
  count = min(max_images, len(batch[F.IMAGE]))
  pictures = []
  for i in range(count):
    masks = batch[F.INSTANCE_MASKS][i] if F.INSTANCE_MASKS in batch else None
    pictures.append(draw_groundtruth(
        batch[F.IMAGE][i], batch[F.BOXES][i], batch[F.CLASSES][i],
        batch[F.WEIGHTS][i], masks, batch[F.MASK_WEIGHTS][i], category_index,
        scale))
  return drawing.tile_images(pictures, min(columns, count))
