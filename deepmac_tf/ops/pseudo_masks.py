"""Pseudo-mask rules: binary masks for instances without groundtruth masks,
made from a mask head's soft predictions (Zhao et al., "Rethinking Mask
Heads for Partially Supervised Instance Segmentation", section 3; spec
``paper.md`` section 3).

One home for the rules, used in-graph by the teacher-student heads (crop
space, during training) and by ``scripts/pseudo_label.py`` (image space,
offline, numpy in and out through these TF functions):

1. ``THRESHOLD``: foreground where the teacher's probability is >= 0.5;
   ``INTERACTION``: foreground where the mean of teacher and student
   probabilities is >= 0.5.
2. A pixel covered by the groundtruth mask of another instance of a *seen*
   class (one with mask supervision) in the same image is background: that
   pixel is known to belong to another object.
3. A pixel whose centre lies outside the instance's groundtruth box is
   background.

Every function works on any grid that covers a box of the image: the whole
image (``frame_boxes`` = ``[0, 0, 1, 1]``, the offline case) or a mask-head
crop (``frame_boxes`` = the crop boxes, the training case). Shapes use
``[..., H, W]`` for masks over such a grid and ``[..., 4]`` for normalized
``ymin, xmin, ymax, xmax`` boxes; the leading ``...`` are instance axes
(``[N]`` or ``[B, N]``). Results never carry gradients: pseudo masks are
targets.
"""

import tensorflow as tf

THRESHOLD = 'THRESHOLD'
INTERACTION = 'INTERACTION'
RULES = (THRESHOLD, INTERACTION)
# The paper's cut-off for both rules.
PROBABILITY_THRESHOLD = 0.5


def check_rule(rule, where='pseudo_mask_rule'):
  """Returns ``rule`` upper-cased if it is one of ``RULES``.

  Raises:
    ValueError: an unknown rule, naming ``where``.
  """
  name = str(rule).upper()
  if name not in RULES:
    raise ValueError(f'{where}: unknown pseudo-mask rule {rule!r}; expected '
                     f'one of {list(RULES)}.')
  return name


def soft_pseudo_masks(teacher_probabilities, student_probabilities=None,
                      rule=THRESHOLD):
  """The probability map a rule thresholds.

  Args:
    teacher_probabilities: [..., H, W] teacher (class-agnostic) mask
      probabilities in [0, 1].
    student_probabilities: [..., H, W] student probabilities of the
      instance's class, same shape; required by ``INTERACTION``.
    rule: ``THRESHOLD`` (the teacher alone) or ``INTERACTION`` (the mean
      of teacher and student).

  Returns:
    float32 [..., H, W], without gradient.

  Raises:
    ValueError: unknown rule, or ``INTERACTION`` without a student.
  """
  rule = check_rule(rule)
  teacher = tf.stop_gradient(tf.cast(teacher_probabilities, tf.float32))
  if rule == THRESHOLD:
    return teacher
  if student_probabilities is None:
    raise ValueError('pseudo_mask_rule INTERACTION needs the student\'s '
                     'probabilities as well as the teacher\'s.')
  student = tf.stop_gradient(tf.cast(student_probabilities, tf.float32))
  return 0.5 * (teacher + student)


def binarize(probabilities, threshold=PROBABILITY_THRESHOLD):
  """[..., H, W] probabilities -> float32 0 / 1 (foreground where p >= t)."""
  probabilities = tf.cast(probabilities, tf.float32)
  return tf.stop_gradient(tf.cast(probabilities >= threshold, tf.float32))


def pixel_centres(frame_boxes, height, width):
  """Normalized image coordinates of the pixel centres of an H x W grid
  spanning each frame box.

  Args:
    frame_boxes: [..., 4] normalized boxes the grid covers.
    height, width: python ints H, W.

  Returns:
    (ys [..., H], xs [..., W]) float32.
  """
  frame_boxes = tf.cast(frame_boxes, tf.float32)
  ymin, xmin, ymax, xmax = tf.unstack(frame_boxes, num=4, axis=-1)
  rows = (tf.range(height, dtype=tf.float32) + 0.5) / float(height)
  cols = (tf.range(width, dtype=tf.float32) + 0.5) / float(width)
  ys = ymin[..., None] + rows * (ymax - ymin)[..., None]
  xs = xmin[..., None] + cols * (xmax - xmin)[..., None]
  return ys, xs


def inside_boxes(boxes, height, width, frame_boxes=None):
  """Rule 3's region: grid pixels whose centres lie inside each box.

  Args:
    boxes: [..., 4] normalized groundtruth boxes.
    height, width: python ints, the grid size H, W.
    frame_boxes: [..., 4] normalized region each grid covers (default: the
      whole image, ``[0, 0, 1, 1]``).

  Returns:
    float32 [..., H, W] of 0 / 1.
  """
  boxes = tf.cast(boxes, tf.float32)
  if frame_boxes is None:
    frame_boxes = tf.ones_like(boxes) * tf.constant([0., 0., 1., 1.])
  ys, xs = pixel_centres(frame_boxes, height, width)
  ymin, xmin, ymax, xmax = tf.unstack(boxes, num=4, axis=-1)
  in_rows = tf.logical_and(ys >= ymin[..., None], ys <= ymax[..., None])
  in_cols = tf.logical_and(xs >= xmin[..., None], xs <= xmax[..., None])
  inside = tf.logical_and(in_rows[..., :, None], in_cols[..., None, :])
  return tf.cast(inside, tf.float32)


def other_seen_masks(masks, is_seen):
  """Rule 2's region, per instance: the union of the groundtruth masks of
  the *other* seen-class instances of the same image.

  An instance's own mask never counts, so the rule leaves a seen-class
  instance's own pixels alone when it is pseudo-labelled too.

  Args:
    masks: [..., N, H, W] binary groundtruth masks of one image (or a batch
      of images, ``[B, N, H, W]``); rows without a mask are zeros.
    is_seen: [..., N] bool (or 0 / 1): the instance's class has mask
      supervision and its mask is real (not padding).

  Returns:
    float32 [..., N, H, W] of 0 / 1.
  """
  masks = tf.cast(tf.cast(masks, tf.float32) > 0.0, tf.float32)
  seen = tf.cast(tf.cast(is_seen, tf.bool), tf.float32)[..., None, None]
  seen_masks = masks * seen
  covered = tf.reduce_sum(seen_masks, axis=-3, keepdims=True) - seen_masks
  return tf.stop_gradient(tf.cast(covered > 0.5, tf.float32))


def seen_overlap_from_crops(seen_count_crops, own_crops, own_is_seen):
  """Rule 2's region in crop space without per-instance image masks.

  Cropping is linear, so the crop of the per-image count of seen masks minus
  the crop of the instance's own mask (when it is seen) is the crop of the
  other seen instances' masks: memory O(B H W) instead of O(B N H W).

  Args:
    seen_count_crops: [..., S, S] crops of sum_j seen_j * mask_j (one map
      per image) at each box.
    own_crops: [..., S, S] crops of the instance's own groundtruth mask.
    own_is_seen: [...] bool / 0-1: the instance is a seen one with a mask.

  Returns:
    float32 [..., S, S] of 0 / 1 (covered by another seen instance).
  """
  own = tf.cast(own_crops, tf.float32) * tf.cast(
      tf.cast(own_is_seen, tf.bool), tf.float32)[..., None, None]
  others = tf.cast(seen_count_crops, tf.float32) - own
  return tf.stop_gradient(tf.cast(others > 0.5, tf.float32))


def pseudo_masks(teacher_probabilities, student_probabilities=None,
                 rule=THRESHOLD, seen_overlap=None, inside_box=None):
  """Rules 1-3: binary pseudo masks.

  Args:
    teacher_probabilities: [..., H, W] teacher probabilities.
    student_probabilities: [..., H, W] student probabilities of the
      instance's class (``INTERACTION`` only).
    rule: ``THRESHOLD`` or ``INTERACTION``.
    seen_overlap: optional [..., H, W], nonzero where another seen-class
      instance's groundtruth mask covers the pixel (``other_seen_masks``,
      cropped to the grid when the grid is a crop); those pixels become
      background.
    inside_box: optional [..., H, W], nonzero inside the instance's
      groundtruth box (``inside_boxes``); pixels outside become background.

  Returns:
    float32 [..., H, W] of 0 / 1, without gradient.
  """
  masks = binarize(soft_pseudo_masks(teacher_probabilities,
                                     student_probabilities, rule))
  if seen_overlap is not None:
    masks *= 1.0 - tf.cast(tf.cast(seen_overlap, tf.float32) > 0.5,
                           tf.float32)
  if inside_box is not None:
    masks *= tf.cast(tf.cast(inside_box, tf.float32) > 0.5, tf.float32)
  return tf.stop_gradient(masks)


def pseudo_masks_in_image(probabilities, boxes, groundtruth_masks, is_seen,
                          rows, rule=THRESHOLD, student_probabilities=None):
  """Rules 1-3 for instances of one image, all grids image-sized (the
  offline pseudo-labelling case).

  Args:
    probabilities: [K, H, W] teacher probabilities pasted into the image,
      one per pseudo-labelled instance.
    boxes: [K, 4] normalized groundtruth boxes of those instances.
    groundtruth_masks: [N, H, W] binary groundtruth masks of all the
      image's instances (zeros where an instance has none).
    is_seen: [N] bool: instance n's class is seen and it has a mask.
    rows: [K] int, the row in ``groundtruth_masks`` of each pseudo-labelled
      instance (its own mask is not an obstacle to itself).
    rule: ``THRESHOLD`` or ``INTERACTION``.
    student_probabilities: [K, H, W] for ``INTERACTION``.

  Returns:
    float32 [K, H, W] of 0 / 1.
  """
  probabilities = tf.convert_to_tensor(probabilities, tf.float32)
  height, width = probabilities.shape[-2], probabilities.shape[-1]
  overlap = tf.gather(other_seen_masks(groundtruth_masks, is_seen),
                      tf.cast(rows, tf.int32))
  return pseudo_masks(probabilities, student_probabilities, rule,
                      seen_overlap=overlap,
                      inside_box=inside_boxes(boxes, height, width))
