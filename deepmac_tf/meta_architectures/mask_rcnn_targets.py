"""Training targets of Deep-MARC: groundtruth conversion, RPN targets, and
the one place that decides which boxes train the mask head.

Box conventions: groundtruth from the input pipeline is normalized to the
padded input ([ymin, xmin, ymax, xmax] in 0..1, zero-padded, class 0 =
padding); Model Garden layers work in absolute pixels of the padded input
with padding marked -1. ``groundtruth_in_pixels`` converts once.
"""

import tensorflow as tf
from official.vision.ops import anchor as anchor_ops

from deepmac_tf.meta_architectures import mask_rcnn_params as params_lib


def groundtruth_in_pixels(boxes, classes, image_height, image_width):
  """Normalized, zero-padded groundtruth -> Model Garden's convention.

  Args:
    boxes: [B, N, 4] normalized to the padded input.
    classes: [B, N] int 1-based ids, 0 = padding.
    image_height, image_width: padded input size (ints or scalars).

  Returns:
    (boxes [B, N, 4] float32 pixels, -1 for padding; classes [B, N] int32,
    -1 for padding).
  """
  classes = tf.cast(classes, tf.int32)
  valid = classes > 0
  scale = tf.cast(tf.stack([image_height, image_width] * 2), tf.float32)
  pixels = tf.cast(boxes, tf.float32) * scale
  pixels = tf.where(valid[..., None], pixels, -tf.ones_like(pixels))
  return pixels, tf.where(valid, classes, -tf.ones_like(classes))


def grid_anchor_boxes(grid, height, width):
  """The OD API's grid anchors on a [ceil(H / stride), ceil(W / stride)]
  feature map: [h, w, A * 4] float32 [ymin, xmin, ymax, xmax] pixels, A =
  len(aspect_ratios) * len(scales), aspect-ratio major (``GridAnchorParams``).
  """
  stride_y, stride_x = grid.stride
  rows, cols = -(-int(height) // stride_y), -(-int(width) // stride_x)
  ratio_sqrt = tf.sqrt(tf.constant(grid.aspect_ratios, tf.float32))[:, None]
  scales = tf.constant(grid.scales, tf.float32)[None, :]
  heights = tf.reshape(scales / ratio_sqrt * grid.base_size[0], [-1])
  widths = tf.reshape(scales * ratio_sqrt * grid.base_size[1], [-1])
  y = tf.range(rows, dtype=tf.float32) * stride_y + grid.offset[0]
  x = tf.range(cols, dtype=tf.float32) * stride_x + grid.offset[1]
  yc = tf.broadcast_to(y[:, None, None], [rows, cols, heights.shape[0]])
  xc = tf.broadcast_to(x[None, :, None], [rows, cols, heights.shape[0]])
  boxes = tf.stack([yc - heights / 2, xc - widths / 2, yc + heights / 2,
                    xc + widths / 2], axis=-1)
  return tf.reshape(boxes, [rows, cols, -1])


def anchor_boxes(params, height, width):
  """{str(level): [h_l, w_l, A * 4]} anchors in pixels of a padded input
  (grid anchors at the one level of a single-level backbone, else Model
  Garden's multiscale anchors), clipped to the input when
  ``clip_anchors_to_image``."""
  if params.grid_anchors is not None:
    anchors = {str(params.min_level): grid_anchor_boxes(
        params.grid_anchors, height, width)}
  else:
    anchors = anchor_ops.Anchor(
        min_level=params.min_level, max_level=params.max_level,
        num_scales=params.anchor_num_scales,
        aspect_ratios=list(params.anchor_aspect_ratios),
        anchor_size=params.anchor_size,
        image_size=(height, width)).multilevel_boxes
  if params.clip_anchors_to_image:
    limit = tf.constant([height, width, height, width], tf.float32)
    anchors = {level: tf.reshape(tf.clip_by_value(
        tf.reshape(tf.cast(a, tf.float32), [a.shape[0], a.shape[1], -1, 4]),
        0.0, limit), tf.shape(a)) for level, a in anchors.items()}
  return anchors


def rpn_targets(anchor_boxes, gt_boxes, gt_classes, params):
  """RPN score and box targets per level (Model Garden's RpnAnchorLabeler).

  Args:
    anchor_boxes: {level: [H_l, W_l, A * 4]} anchors of one image (pixels).
    gt_boxes: [B, N, 4] pixels, -1 padding.
    gt_classes: [B, N] int32, -1 padding.
    params: ``MaskRCNNParams``.

  Returns:
    (score targets {level: [B, H_l, W_l, A]} int32 (1 positive, 0 negative,
    -1 ignored), box targets {level: [B, H_l, W_l, A * 4]} float32).
  """
  labeler = anchor_ops.RpnAnchorLabeler(
      match_threshold=params.rpn_match_threshold,
      unmatched_threshold=params.rpn_unmatched_threshold,
      rpn_batch_size_per_im=params.rpn_batch_size_per_im,
      rpn_fg_fraction=params.rpn_fg_fraction)
  levels = sorted(anchor_boxes, key=int)

  def label_one(inputs):
    boxes, classes = inputs
    valid = classes > 0
    # Padding rows must not reach the matcher (it force-matches every row).
    scores, box_targets = labeler.label_anchors(
        anchor_boxes, tf.boolean_mask(boxes, valid),
        tf.boolean_mask(classes, valid)[:, None])
    return ([tf.cast(scores[l], tf.int32) for l in levels],
            [tf.cast(box_targets[l], tf.float32) for l in levels])

  signature = (
      [tf.TensorSpec(anchor_boxes[l].shape[:2] +
                     [anchor_boxes[l].shape[2] // 4], tf.int32)
       for l in levels],
      [tf.TensorSpec(anchor_boxes[l].shape, tf.float32) for l in levels])
  scores, boxes = tf.map_fn(label_one, (gt_boxes, gt_classes),
                            fn_output_signature=signature)
  return dict(zip(levels, scores)), dict(zip(levels, boxes))


def _first_foreground(rois, matched_classes, matched_indices, count):
  """The first ``count`` sampled ROIs matched to an object, per image.

  Returns:
    (rois [B, K, 4], indices [B, K] int32 into the groundtruth (0 where not
    foreground), is_foreground [B, K] float32), K = min(count, R).
  """
  foreground = tf.cast(matched_classes > 0, tf.float32)
  k = min(count, rois.shape[1]) if rois.shape[1] is not None else count
  # top_k keeps the earlier ROI on ties, so the pick is deterministic.
  _, order = tf.math.top_k(foreground, k=k)
  pick = lambda t: tf.gather(t, order, batch_dims=1)
  indices = tf.maximum(tf.cast(pick(matched_indices), tf.int32), 0)
  return pick(rois), indices, pick(foreground)


def mask_training_boxes(box_source, gt_boxes, gt_classes, gt_mask_weights,
                        sampled=None, num_sampled_masks=128):
  """THE place where the box source of the mask head is decided.

  Args:
    box_source: one of ``mask_rcnn_params.BOX_SOURCES``.
    gt_boxes: [B, N, 4] groundtruth boxes in pixels (padding: any value).
    gt_classes: [B, N] int 1-based groundtruth classes (padding: <= 0).
    gt_mask_weights: [B, N] float per-instance mask weights (0 = no mask
      loss: partial supervision, no mask, or padding).
    sampled: for the proposal sources, (rois [B, R, 4] pixels, matched
      classes [B, R], matched groundtruth indices [B, R]) from the ROI
      sampler.
    num_sampled_masks: foreground proposals per image.

  Returns:
    dict with ``boxes`` [B, M, 4] pixels (what the mask ROI crop sees),
    ``instance_indices`` [B, M] int32 (the groundtruth instance whose mask
    is the target), ``classes`` [B, M] int32 1-based, ``weights`` [B, M]
    float32 (the instance's mask weight, 0 for background proposals).
    M = N (groundtruth), min(num_sampled_masks, R) (proposals) or the sum.
  """
  gt_classes = tf.cast(gt_classes, tf.int32)
  gt_mask_weights = tf.cast(gt_mask_weights, tf.float32)
  num_gt = tf.shape(gt_boxes)[1]
  gt_part = {
      'boxes': tf.cast(gt_boxes, tf.float32),
      'instance_indices': tf.broadcast_to(tf.range(num_gt)[None],
                                          tf.shape(gt_classes)),
      'classes': tf.maximum(gt_classes, 0),
      'weights': gt_mask_weights,
  }
  if box_source == params_lib.GROUNDTRUTH:
    return gt_part
  if box_source not in params_lib.BOX_SOURCES:
    raise ValueError(f'box_source must be one of {params_lib.BOX_SOURCES}, '
                     f'got {box_source!r}.')
  rois, matched_classes, matched_indices = sampled
  rois, indices, foreground = _first_foreground(
      rois, matched_classes, matched_indices, num_sampled_masks)
  proposal_part = {
      'boxes': tf.cast(rois, tf.float32),
      'instance_indices': indices,
      'classes': tf.gather(gt_part['classes'], indices, batch_dims=1),
      'weights': foreground * tf.gather(gt_mask_weights, indices,
                                        batch_dims=1),
  }
  if box_source == params_lib.PROPOSALS:
    return proposal_part
  return {key: tf.concat([gt_part[key], proposal_part[key]], axis=1)
          for key in gt_part}
