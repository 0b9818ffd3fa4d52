"""Deep-MAC: CenterNet + a class-agnostic deep mask head (spec section 1).

``DeepMACMetaArch`` adds to every backbone stage an ``INSTANCE_EMBEDDING``
(``dim``) and a ``PIXEL_EMBEDDING`` (``pixel_embedding_dim``) head, and one
mask head ``_mask_net`` shared by the stages (OD API checkpoint names).

* ``loss``: the mask head is trained on crops at the **groundtruth boxes**
  (one mask-head call per stage, on the instances a loss weighs: mask
  weight > 0, or box weight > 0 with the box-consistency loss); targets are
  cropped at the same boxes, jittered in training when
  ``max_roi_jitter_ratio > 0``. Per-instance losses are weighted by
  ``groundtruth_instance_mask_weights`` (partial supervision) in
  ``mask_losses.weighted_mask_loss`` only.
* ``postprocess``: masks at the **predicted** boxes (last stage) scoring
  >= ``mask_detection_score_threshold``; zeros in the other slots.
* ``predict_masks_from_boxes``: masks at caller-given boxes.
* ``detector_free``: no detection heads or losses; only the mask branch
  trains, on groundtruth boxes; masks come from given boxes.
* ``teacher_student``: the Deep-MAC head becomes a training-only teacher of
  a class-specific student that produces every mask at inference
  (``deepmac_teacher_student``); box-prompted masks then need each box's
  class.

Groundtruth is passed to ``loss`` explicitly; nothing is stored on the model.
"""

import tensorflow as tf

from deepmac_tf.data.fields import InputFields
from deepmac_tf.errors import ConfigError
from deepmac_tf.losses import mask_losses
from deepmac_tf.mask_heads import mask_head_network
from deepmac_tf.mask_heads import selected_slots
from deepmac_tf.meta_architectures import center_net
from deepmac_tf.meta_architectures import deepmac_losses
from deepmac_tf.meta_architectures import deepmac_params as params_lib
from deepmac_tf.meta_architectures import deepmac_teacher_student as teacher_student
from deepmac_tf.meta_architectures import deepmac_weight_transfer as weight_transfer
from deepmac_tf.ops import box_jitter
from deepmac_tf.ops import instances
from deepmac_tf.ops import mask_head_inputs
from deepmac_tf.ops import mask_weights as mask_weights_lib
from deepmac_tf.ops import roi_crop

DeepMACParams = params_lib.DeepMACParams

INSTANCE_EMBEDDING = 'INSTANCE_EMBEDDING'
PIXEL_EMBEDDING = 'PIXEL_EMBEDDING'
DETECTION_MASKS = 'detection_masks'
DEEP_MASK_ESTIMATION = 'deep_mask_estimation'
DEEP_MASK_BOX_CONSISTENCY = 'deep_mask_box_consistency'
LOSS_DEEP_MASK_ESTIMATION = 'Loss/' + DEEP_MASK_ESTIMATION
LOSS_DEEP_MASK_BOX_CONSISTENCY = 'Loss/' + DEEP_MASK_BOX_CONSISTENCY
LOSS_DEEP_MASK_STUDENT = teacher_student.LOSS_STUDENT_MASK


class DeepMACMetaArch(center_net.CenterNetMetaArch):
  """CenterNet with Deep-MAC instance masks."""

  def __init__(self, is_training, num_classes, feature_extractor,
               object_center_params, object_detection_params=None,
               deepmac_params=None, name='deepmac_meta_arch', **kwargs):
    """Builds the detection heads, embedding heads and mask head.

    Args:
      is_training: whether the model is built for training.
      num_classes: number of object classes.
      feature_extractor: see ``CenterNetMetaArch``.
      object_center_params: ``ObjectCenterParams``.
      object_detection_params: ``ObjectDetectionParams``; required unless
        ``deepmac_params.detector_free`` (masks need predicted boxes).
      deepmac_params: ``DeepMACParams`` (default: the proto defaults).
      name: Keras layer name.
      **kwargs: passed to ``CenterNetMetaArch``.

    Raises:
      ConfigError: no detection task for a model that must detect.
    """
    deepmac_params = deepmac_params or DeepMACParams()
    if object_detection_params is None and not deepmac_params.detector_free:
      raise ConfigError(
          'model.center_net.object_detection_task: Deep-MAC needs the box '
          'task to predict the boxes it segments (or set detector_free).')
    super().__init__(is_training, num_classes, feature_extractor,
                     object_center_params, object_detection_params,
                     name=name, **kwargs)
    self._deepmac_params = deepmac_params
    if deepmac_params.detector_free:
      # No detection heads at all: nothing untrained in the checkpoint.
      self._prediction_head_dict = {}
    # 3x3 (OD API 2021 release) or 1x3 (its later unit_height_conv).
    kernel = (deepmac_params.embedding_head_kernel_shape,)
    filters = (deepmac_params.embedding_head_num_filters,)
    self._add_prediction_head(INSTANCE_EMBEDDING, deepmac_params.dim,
                              kernel_sizes=kernel, num_filters=filters)
    self._add_prediction_head(PIXEL_EMBEDDING,
                              deepmac_params.pixel_embedding_dim,
                              kernel_sizes=kernel, num_filters=filters)
    self._mask_net = self._student_mask_net = None
    if deepmac_params.teacher_student is not None:
      self._student_mask_net = teacher_student.build_student(deepmac_params,
                                                             num_classes)
    if deepmac_params.teacher_student is None or is_training:
      # With a student, the Deep-MAC head is its teacher: built for
      # training only, so an export holds no teacher variable.
      self._mask_net = mask_head_network.MaskHeadNetwork(
          deepmac_params.network_type,
          num_init_channels=deepmac_params.num_init_channels,
          use_instance_embedding=deepmac_params.use_instance_embedding,
          mask_size=(None if deepmac_params.predict_full_resolution_masks
                     else deepmac_params.mask_size),
          use_sync_batch_norm=deepmac_params.use_sync_batch_norm,
          # MaskX weight transfer predicts the projection per class.
          num_outputs=0 if deepmac_params.weight_transfer else 1)
    self._weight_transfer = self._random_class_embeddings = None
    if deepmac_params.weight_transfer is not None:
      self._weight_transfer, self._random_class_embeddings = (
          weight_transfer.build_transfer_parts(
              deepmac_params, num_classes, object_center_params,
              self._mask_net))

  @property
  def deepmac_params(self):
    return self._deepmac_params

  @property
  def class_specific_masks(self):
    """Box-prompted masks need each box's class (the teacher-student
    student, MaskX weight transfer; ``capabilities.needs_box_classes``)."""
    return (self._student_mask_net is not None or
            self._weight_transfer is not None)

  def build_training_heads(self, prediction_dict):
    """Creates the variables of the training-only teacher, with one box."""
    if self._student_mask_net is not None and self._mask_net is not None:
      self._mask_logits(prediction_dict[PIXEL_EMBEDDING][-1],
                        prediction_dict[INSTANCE_EMBEDDING][-1],
                        tf.constant([[[0.25, 0.25, 0.75, 0.75]]]),
                        training=False)

  # -- the mask branch -----------------------------------------------------

  def _mask_logits(self, pixel_embedding, instance_embedding, boxes,
                   training=None, selected=None, classes=None, stage=-1):
    """Mask logits at boxes: the one mask-head call of a stage.

    This is the one place where boxes are cropped for the mask head; the
    caller decides which boxes (groundtruth in ``loss``, predicted in
    ``postprocess``, given in ``predict_masks_from_boxes``) and which of
    them need a mask (``selected``): the head runs on those only
    (``mask_heads.selected_slots``; ``mask_head_slots`` = ALL_SLOTS runs it
    on every slot with static shapes).

    Args:
      pixel_embedding: [B, h, w, E] pixel-embedding map of one stage.
      instance_embedding: [B, h, w, D] instance-embedding map, same stage.
      boxes: [B, N, 4] boxes normalized to the padded map.
      training: Keras training flag of the mask head.
      selected: optional bool [B, N]; None = every box.
      classes: optional int [B, N] 0-based classes: the teacher-student
        student runs and gives each box's class channel; None = the
        Deep-MAC head (the teacher, with a student). With MaskX weight
        transfer (required there) the Deep-MAC head gives each box's class
        channel, projected with T's weights for the class.
      stage: index of the backbone stage the maps come from (weight
        transfer reads that stage's center-heatmap weights).

    Returns:
      [B, N, S, S] float32 logits (crop mode) or [B, N, h, w] (full
      resolution); 0 at the slots not selected.
    """
    p = self._deepmac_params
    all_slots = p.mask_head_on_all_slots
    if selected is None:
      selected, all_slots = tf.ones(tf.shape(boxes)[:2], tf.bool), True
    instance_input = mask_head_inputs.gather_instance_embeddings(
        instance_embedding, boxes)
    if classes is None:
      net = lambda *rows: self._mask_net(*rows, training=training)
      class_inputs = ()
    elif self._weight_transfer is not None:
      net = weight_transfer.class_channel_head(
          self._mask_net, self._weight_transfer,
          self._transfer_embeddings_fn(stage),
          p.weight_transfer.stop_gradient, training)
      class_inputs = (tf.cast(classes, tf.int32),)
    else:
      net = teacher_student.class_channel_head(self._student_mask_net,
                                               training)
      class_inputs = (tf.cast(classes, tf.int32),)
    if p.predict_full_resolution_masks:
      # Each row tiles its image's whole embedding map: built per row, so
      # only for the rows the head runs on.
      image_index = tf.broadcast_to(
          tf.range(tf.shape(boxes)[0])[:, None], tf.shape(boxes)[:2])

      def head(row_embedding, row_boxes, row_image):
        pixel_input = mask_head_inputs.full_resolution_mask_head_inputs(
            tf.gather(pixel_embedding, row_image), row_boxes[:, None],
            p.use_xy)[:, 0]
        return net(row_embedding, pixel_input)

      slot_inputs = (instance_input, boxes, image_index)
    else:
      head = net
      slot_inputs = (instance_input, mask_head_inputs.crop_mask_head_inputs(
          pixel_embedding, boxes, p.mask_size, p.use_xy)) + class_inputs
    return selected_slots.apply_to_selected_slots(
        head, selected, slot_inputs, all_slots=all_slots,
        skip_if_empty=pixel_embedding.shape[1:3].is_fully_defined())

  def _masks_from_boxes(self, prediction_dict, boxes, selected=None,
                        classes=None):
    """Mask probabilities at boxes normalized to the padded map (last stage).

    Args:
      prediction_dict: output of ``predict``.
      boxes: [B, N, 4].
      selected: optional bool [B, N]: the boxes that get a mask; the others
        get zeros. None = every box.
      classes: [B, N] 0-based classes of the boxes; required with a
        teacher-student student (the mask is its class's channel), ignored
        otherwise.

    Returns:
      [B, N, S, S] (crop mode) or [B, N, postprocess_crop_size,
      postprocess_crop_size] (full resolution) float32 probabilities,
      box-relative.
    """
    p = self._deepmac_params
    if not self.class_specific_masks:
      classes = None
    elif classes is None:
      raise ValueError(
          'This model predicts class-specific masks (model.center_net.'
          'deepmac_mask_estimation.' + (
              'weight_transfer' if p.weight_transfer else 'teacher_student') +
          '): pass the class of each box (classes [batch, num_boxes]) with '
          'the boxes.')
    pixel_embedding = prediction_dict[PIXEL_EMBEDDING][-1]
    logits = self._mask_logits(pixel_embedding,
                               prediction_dict[INSTANCE_EMBEDDING][-1], boxes,
                               training=False, selected=selected,
                               classes=classes)
    if p.predict_full_resolution_masks:
      height, width = center_net.spatial_size(pixel_embedding)
      logits = instances.resize_logits(logits, height * self._stride,
                                       width * self._stride)
      logits = roi_crop.crop_and_resize_per_instance(
          logits, boxes, p.postprocess_crop_size)
    masks = tf.sigmoid(logits)
    if selected is None:
      return masks
    return masks * tf.cast(selected, masks.dtype)[..., None, None]

  def _transfer_embeddings_fn(self, stage):
    """0-based classes -> w_det of MaskX weight transfer at a stage: the
    stage's center-heatmap output weights (or the RANDOM vectors)."""
    center_heads = self._prediction_head_dict.get(center_net.OBJECT_CENTER)
    return weight_transfer.class_embeddings_fn(
        self._deepmac_params.weight_transfer.input,
        center_heads[stage] if center_heads else None,
        self._random_class_embeddings)

  def _instances_needing_masks(self, weights, mask_weights, has_masks):
    """bool [B, N]: the groundtruth instances some mask-branch loss weighs.

    The mask loss weighs instances by mask weight (when groundtruth masks
    are given), the box-consistency loss by box weight (spec 4.1); every
    other instance (padding, classes not allowed masks) adds 0 to both.
    """
    p = self._deepmac_params
    needed = tf.zeros(tf.shape(weights), tf.bool)
    if p.task_loss_weight > 0 and has_masks:
      needed = tf.logical_or(needed, mask_weights > 0)
    if p.box_consistency_loss_weight > 0:
      needed = tf.logical_or(needed, weights > 0)
    return needed

  # -- lifecycle -----------------------------------------------------------

  def loss(self, prediction_dict, groundtruth=None, training=None):
    """CenterNet losses (unless detector-free) plus the Deep-MAC losses.

    Args:
      prediction_dict: output of ``predict``.
      groundtruth: ``InputFields`` dict: ``groundtruth_boxes`` [B, N, 4]
        (normalized to the padded input), ``groundtruth_classes`` [B, N],
        optional ``groundtruth_weights`` [B, N],
        ``groundtruth_instance_masks`` [B, N, H, W] (absent: no mask
        estimation term), ``groundtruth_instance_mask_weights`` [B, N]
        (absent: the instance weights restricted to
        ``allowed_masked_classes_ids``), ``true_image_shape``. Or, OD API
        style, ``true_image_shapes`` [B, 3] / None: the groundtruth of
        ``provide_groundtruth`` is used (and ``training`` None means
        ``is_training``).
      training: training mode: jitter the target boxes and run the mask
        head's batch norm in training mode. None counts as False.

    Returns:
      dict of float32 scalars; ``Loss/deep_mask_estimation`` =
      task_loss_weight x the mask loss averaged over the stages used, and
      ``Loss/deep_mask_box_consistency`` when its weight is > 0.
    """
    groundtruth, training = self.loss_inputs(groundtruth, training)
    losses = {}
    if not self._deepmac_params.detector_free:
      losses = super().loss(prediction_dict, groundtruth, training=training)
    losses.update(self._deepmac_losses(prediction_dict, groundtruth,
                                       bool(training)))
    return losses

  def _deepmac_losses(self, prediction_dict, groundtruth, training):
    p = self._deepmac_params
    boxes = tf.stop_gradient(
        tf.cast(groundtruth[InputFields.BOXES], tf.float32))
    classes = groundtruth[InputFields.CLASSES]
    weights = groundtruth.get(InputFields.WEIGHTS)
    if weights is None:
      weights = tf.cast(classes > 0, tf.float32)
    weights = tf.cast(weights, tf.float32)
    mask_weights = mask_weights_lib.instance_mask_weights(
        classes, p.allowed_masked_classes_ids,
        groundtruth.get(InputFields.MASK_WEIGHTS), weights)
    masks = groundtruth.get(InputFields.INSTANCE_MASKS)
    boxes_for_crop = boxes
    if training and p.max_roi_jitter_ratio > 0:
      boxes_for_crop = tf.stop_gradient(box_jitter.jitter_boxes(
          boxes, p.max_roi_jitter_ratio, p.roi_jitter_mode))
    overlap_args = ((classes, weights) if p.ignore_per_class_box_overlap
                    else None)

    pixel_maps = prediction_dict[PIXEL_EMBEDDING]
    instance_maps = prediction_dict[INSTANCE_EMBEDDING]
    stages = [len(pixel_maps) - 1] if p.use_only_last_stage else range(
        len(pixel_maps))
    needed = self._instances_needing_masks(weights, mask_weights,
                                           masks is not None)
    student, teacher = None, self._mask_net is not None
    if self._student_mask_net is not None and masks is not None:
      # The teacher also predicts the pseudo masks of the unseen instances;
      # a model built for inference has none (e.g. evaluation losses): its
      # student is scored on the groundtruth masks of every class.
      student = teacher_student.student_inputs(
          p, classes, weights, groundtruth.get(InputFields.MASK_WEIGHTS),
          masks, boxes_for_crop, with_teacher=teacher)
      if teacher:
        needed = tf.logical_or(needed, student['real'] > 0)
    # MaskX weight transfer: the channel of each instance's class.
    transfer_classes = (tf.maximum(tf.cast(classes, tf.int32) - 1, 0)
                        if p.weight_transfer is not None else None)
    mask_total, box_total, student_total = 0.0, 0.0, 0.0
    for stage in stages:
      logits = None
      if teacher:
        logits = self._mask_logits(pixel_maps[stage], instance_maps[stage],
                                   boxes, training=training, selected=needed,
                                   classes=transfer_classes, stage=stage)
      if student is not None:
        student_logits = self._mask_logits(
            pixel_maps[stage], instance_maps[stage], boxes,
            training=training, selected=student['real'] > 0,
            classes=student['classes'])
        student_total += teacher_student.student_stage_loss(
            p, logits, student_logits, masks, boxes, student)[0]
      if not teacher:
        continue
      if p.task_loss_weight > 0:
        per_instance = deepmac_losses.mask_estimation_loss(
            p.classification_loss, logits, masks, boxes_for_crop,
            full_resolution=p.predict_full_resolution_masks,
            no_overlap_args=overlap_args)
        mask_total += mask_losses.weighted_mask_loss(per_instance,
                                                     mask_weights)
      if p.box_consistency_loss_weight > 0:
        per_instance = deepmac_losses.box_consistency_loss(
            p.classification_loss, boxes, boxes_for_crop, logits,
            p.mask_size, full_resolution=p.predict_full_resolution_masks,
            normalize=p.box_consistency_loss_normalize,
            tightness=p.box_consistency_tightness)
        # Weak losses supervise every instance with a box (spec 4.1).
        box_total += mask_losses.weighted_mask_loss(per_instance, weights)
    num_stages = float(len(stages))
    losses = {}
    if teacher and p.task_loss_weight > 0:
      losses[LOSS_DEEP_MASK_ESTIMATION] = (
          p.task_loss_weight * mask_total / num_stages)
    if teacher and p.box_consistency_loss_weight > 0:
      losses[LOSS_DEEP_MASK_BOX_CONSISTENCY] = (
          p.box_consistency_loss_weight * box_total / num_stages)
    if p.teacher_student is not None:
      losses = {k: p.teacher_student.teacher_loss_weight * v
                for k, v in losses.items()}
      if student is not None:
        losses[LOSS_DEEP_MASK_STUDENT] = (
            p.task_loss_weight * p.teacher_student.student_loss_weight *
            student_total / num_stages)
    return losses

  def postprocess(self, prediction_dict, true_image_shapes=None):
    """CenterNet detections plus ``detection_masks`` at the predicted boxes.

    Args:
      prediction_dict: output of ``predict``.
      true_image_shapes: int [B, 3]; None = the padded input size.

    Returns:
      CenterNet's dict plus ``detection_masks`` float32 [B, K, S, S]
      (``postprocess_crop_size`` in full-resolution mode): box-relative
      probabilities for the detections scoring >= ``mask_detection_score_
      threshold`` (every one of the K with the default 0), zeros for the
      others (the mask head does not run on them).

    Raises:
      ValueError: for a detector-free model (use
        ``predict_masks_from_boxes``).
    """
    if self._deepmac_params.detector_free:
      raise ValueError('A detector-free Deep-MAC model predicts no boxes; '
                       'use predict_masks_from_boxes(prediction_dict, boxes, '
                       'true_image_shapes).')
    detections = super().postprocess(prediction_dict, true_image_shapes)
    height, width = center_net.spatial_size(
        prediction_dict[PIXEL_EMBEDDING][-1])
    scale = tf.cast(tf.stack([height, width, height, width]), tf.float32)
    boxes = detections[center_net.DETECTION_BOXES_STRIDED] / scale
    selected = None
    threshold = self._deepmac_params.mask_detection_score_threshold
    if threshold > 0:
      selected = detections[center_net.DETECTION_SCORES] >= threshold
    detections[DETECTION_MASKS] = self._masks_from_boxes(
        prediction_dict, boxes, selected=selected,
        classes=detections[center_net.DETECTION_CLASSES])
    return detections

  def predict_masks_from_boxes(self, prediction_dict, boxes,
                               true_image_shapes=None, classes=None):
    """Box-prompted segmentation: masks at caller-given boxes.

    Args:
      prediction_dict: output of ``predict``.
      boxes: [B, N, 4] boxes normalized to the true (unpadded) image.
      true_image_shapes: int [B, 3]; None = the padded input size.
      classes: [B, N] 0-based classes; required by a teacher-student model
        (``class_specific_masks``), ignored otherwise.

    Returns:
      {'detection_masks': float32 [B, N, S, S] box-relative probabilities}
      (``postprocess_crop_size`` in full-resolution mode). Paste them with
      ``ops.mask_pasting.paste_box_masks`` using the same boxes.
    """
    padded = center_net.padded_image_shapes(
        prediction_dict[center_net.PREPROCESSED_INPUTS])
    if true_image_shapes is None:
      true_image_shapes = padded
    ratio = (tf.cast(true_image_shapes[:, :2], tf.float32) /
             tf.cast(padded[:, :2], tf.float32))
    scale = tf.concat([ratio, ratio], axis=-1)[:, None, :]
    padded_boxes = tf.cast(boxes, tf.float32) * scale
    return {DETECTION_MASKS: self._masks_from_boxes(
        prediction_dict, padded_boxes, classes=classes)}
