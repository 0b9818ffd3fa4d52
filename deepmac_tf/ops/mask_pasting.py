"""Pastes box-relative masks into image space (spec section 5.4): the one
implementation, used by the serving signatures (``detection_masks_reframed``),
the evaluation loop and the inference API.

Same result as the OD API's ``reframe_box_masks_to_image_masks`` (bilinear):
each box mask is treated as an image and cropped at its "reverse box" -- the
image frame expressed in the box's coordinates -- to the image size, with
``tf.image.crop_and_resize`` (extrapolation 0). That kernel is the fast form
on CPU and GPU (100 masks into 480x640: ~45 ms on 2 CPU cores, against ~700
ms for the XLA-friendly gather of ``roi_crop``); it has no XLA kernel, so
pasting stays outside ``jit_compile`` functions.
"""

import tensorflow as tf


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


def paste_box_masks(box_masks, boxes, image_height, image_width,
                    threshold=None):
  """Pastes [..., S, S] box masks into [..., H, W] image masks.

  Args:
    box_masks: [..., S, S] box-relative masks (e.g. probabilities); any
      leading dimensions ([n], [B, K], ...), possibly empty.
    boxes: [..., 4] boxes normalized to the target image, same leading
      dimensions.
    image_height: scalar H of the output (may be a tensor).
    image_width: scalar W of the output.
    threshold: None returns float32 values; a number returns uint8 masks,
      1 where the pasted value is > threshold.

  Returns:
    [..., H, W] tensor; 0 outside the boxes. Output pixel i (of H) samples
    the box mask at normalized image position i / (H - 1), so a box mask of
    ones becomes exactly the pixels with y1 <= i / (H - 1) <= y2 (and
    likewise for x).
  """
  box_masks = tf.cast(box_masks, tf.float32)
  boxes = tf.cast(boxes, tf.float32)
  leading = tf.shape(boxes)[:-1]
  mask_size = tf.shape(box_masks)[-2:]
  flat_masks = tf.reshape(box_masks, tf.concat([[-1], mask_size, [1]], 0))
  flat_boxes = tf.reshape(boxes, [-1, 4])
  image_size = tf.stack([image_height, image_width])
  pasted = tf.image.crop_and_resize(
      flat_masks, reverse_boxes(flat_boxes), tf.range(tf.shape(flat_boxes)[0]),
      tf.cast(image_size, tf.int32), extrapolation_value=0.0)[..., 0]
  if threshold is not None:
    pasted = tf.cast(pasted > threshold, tf.uint8)
  return tf.reshape(pasted, tf.concat([leading, tf.cast(image_size, tf.int32)],
                                      0))
