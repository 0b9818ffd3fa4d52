"""Pastes box-relative masks into image space (spec section 5.4).

Same result as the OD API's ``reframe_box_masks_to_image_masks`` (bilinear):
each box mask is treated as an image and cropped at its "reverse box" -- the
image frame expressed in the box's coordinates -- to the image size, with
``tf.image.crop_and_resize`` semantics (extrapolation 0). Runs under XLA.
"""

import tensorflow as tf

from deepmac_tf.ops import roi_crop


def reverse_boxes(boxes):
  """The unit image box in each box's frame.

  Args:
    boxes: [..., 4] normalized [y1, x1, y2, x2].

  Returns:
    [..., 4] = [(0 - y1) / bh, (0 - x1) / bw, (1 - y1) / bh, (1 - x1) / bw],
    with bh = max(y2 - y1, 1e-4) and bw = max(x2 - x1, 1e-4).
  """
  boxes = tf.cast(boxes, tf.float32)
  mins = boxes[..., :2]
  sizes = tf.maximum(boxes[..., 2:] - mins, 1e-4)
  return tf.concat([(0.0 - mins) / sizes, (1.0 - mins) / sizes], axis=-1)


def paste_box_masks_batched(box_masks, boxes, image_height, image_width):
  """Pastes [B, K, S, S] box masks into [B, K, H, W] image masks.

  Args:
    box_masks: [B, K, S, S] float box-relative masks (e.g. probabilities).
    boxes: [B, K, 4] boxes normalized to the target image.
    image_height: scalar H of the output.
    image_width: scalar W of the output.

  Returns:
    [B, K, H, W] masks, box_masks' dtype; 0 outside the boxes. Output pixel
    i (of H) samples the box mask at normalized image position i / (H - 1),
    so a box mask of ones becomes exactly the pixels with
    y1 <= i / (H - 1) <= y2 (and likewise for x).
  """
  return roi_crop.crop_and_resize_per_instance(
      box_masks, reverse_boxes(boxes), (image_height, image_width))


def paste_box_masks_into_image(box_masks, boxes, image_height, image_width):
  """Pastes [n, S, S] box masks into [n, H, W] image masks.

  Args:
    box_masks: [n, S, S] float box-relative masks.
    boxes: [n, 4] boxes normalized to the target image.
    image_height: scalar H.
    image_width: scalar W.

  Returns:
    [n, H, W] masks (see ``paste_box_masks_batched``).
  """
  pasted = paste_box_masks_batched(box_masks[None], boxes[None],
                                   image_height, image_width)
  return pasted[0]
