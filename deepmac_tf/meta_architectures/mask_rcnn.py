"""Deep-MARC: Mask R-CNN with a deep, class-agnostic mask head (spec §1).

Built from Model Garden's ``official.vision`` parts: backbone (ResNet /
SpineNet) + FPN, anchors, ``RPNHead``, ``MultilevelROIGenerator``,
``ROISampler``, ``MultilevelROIAligner``, ``DetectionHead`` and
``DetectionGenerator``, and Model Garden's RPN / Fast R-CNN losses. Ours: the
mask head from the catalogue (``UpsamplingMaskHead``), which boxes train it
(``mask_rcnn_targets.mask_training_boxes``, one enum) and partial
supervision (``groundtruth_instance_mask_weights`` in
``mask_losses.weighted_mask_loss``).

Lifecycle (as Deep-MAC): ``normalize_images`` -> ``predict(preprocessed,
training=, groundtruth=None)`` -> ``loss(predictions, groundtruth,
training)`` / ``postprocess(predictions, true_image_shapes)``. In training
the second stage needs groundtruth (ROI sampling); pass it to ``predict``,
or ``loss`` runs the second stage itself from the first-stage predictions.
Nothing is stored on the model between calls, except by the OD API layer
(``detection_model.DetectionModelLifecycle``: ``preprocess`` ->
``(inputs, true_image_shapes)``; after ``provide_groundtruth``, ``predict``
and ``loss(predictions, true_image_shapes)`` use that groundtruth).

Boxes inside are pixels of the padded input; ``detection_boxes`` are
normalized to the true image.
"""

import tensorflow as tf
import tf_keras
from official.vision.modeling.heads import dense_prediction_heads
from official.vision.modeling.heads import instance_heads
from official.vision.modeling.layers import detection_generator
from official.vision.modeling.layers import roi_aligner
from official.vision.modeling.layers import roi_generator
from official.vision.modeling.layers import roi_sampler
from official.vision.ops import box_ops

from deepmac_tf.backbones import deepmarc_backbones
from deepmac_tf.backbones import faster_rcnn_keras
from deepmac_tf.data.fields import InputFields
from deepmac_tf.errors import ConfigError
from deepmac_tf.layers import layer_hyperparams
from deepmac_tf.mask_heads import upsampling_mask_head
from deepmac_tf.meta_architectures import detection_model
from deepmac_tf.meta_architectures import mask_rcnn_box_classifier as box_classifier_lib
from deepmac_tf.meta_architectures import mask_rcnn_class_masks as class_masks
from deepmac_tf.meta_architectures import mask_rcnn_losses
from deepmac_tf.meta_architectures import mask_rcnn_mask_branch as mask_branch
from deepmac_tf.meta_architectures import mask_rcnn_params as params_lib
from deepmac_tf.meta_architectures import mask_rcnn_postprocess as postprocess_lib
from deepmac_tf.meta_architectures import mask_rcnn_targets as targets
from deepmac_tf.meta_architectures import mask_rcnn_teacher_student as teacher_student
from deepmac_tf.ops import mask_targets
from deepmac_tf.ops import multiclass_nms
from deepmac_tf.ops import mask_weights

PREPROCESSED_INPUTS = 'preprocessed_inputs'
FEATURES = 'features'
RPN_SCORES = 'rpn_scores'
RPN_BOXES = 'rpn_boxes'
ANCHOR_BOXES = 'anchor_boxes'
PROPOSALS = 'proposals'
IMAGE_SHAPE = 'image_shape'
# Second stage in training (predict with groundtruth, or loss).
SAMPLED_ROIS = 'sampled_rois'
CLASS_OUTPUTS = 'class_outputs'
BOX_OUTPUTS = 'box_outputs'
CLASS_TARGETS = 'class_targets'
BOX_TARGETS = 'box_targets'
MASK_ROI_BOXES = 'mask_roi_boxes'
MASK_LOGITS = 'mask_logits'
MASK_TARGETS = 'mask_targets'
MASK_WEIGHTS = 'mask_loss_weights'

DETECTION_MASKS = 'detection_masks'
DETECTION_MULTICLASS_SCORES = 'detection_multiclass_scores'


def use_combined_nms(params):
  """Whether the detection NMS is ``tf.image.combined_non_max_suppression``.

  ``ops.multiclass_nms`` has Model Garden's padded sorted NMS (its
  ``nms_version='v2'``, written for TPUs) and the fused kernel. When every
  proposal enters the per-class NMS (``detection_pre_nms_top_k >=
  rpn_test_num_proposals``, as in all our configs) the fused kernel keeps
  exactly the same detections, in 7 ms instead of 450 ms for 1000 proposals
  x 90 classes on 2 CPU cores (measured with Model Garden's generator). It
  has no TPU kernel, so TPUs keep the padded NMS.
  ``params.use_combined_nms`` overrides the choice by device.

  (The RPN keeps Model Garden's NMS: its combined-NMS path skips the
  pre-NMS top-k, which changes the proposals, for about 20 ms.)
  """
  if params.use_combined_nms is not None:
    return params.use_combined_nms
  if params.detection_pre_nms_top_k < params.rpn_test_num_proposals:
    return False
  return not tf.config.list_logical_devices('TPU')


class MaskRCNNMetaArch(detection_model.DetectionModelLifecycle,
                       tf_keras.layers.Layer):
  """Mask R-CNN / Deep-MARC. Build with ``MaskRCNNParams``."""

  def __init__(self, is_training, params, name='mask_rcnn_meta_arch',
               **kwargs):
    """Builds every layer (before any call, so checkpoint names are stable).

    Args:
      is_training: whether built for training (the Keras ``training``
        argument of each call drives layer behaviour).
      params: ``MaskRCNNParams``; ``params.mask_head`` None = boxes only.
      name: Keras layer name.
      **kwargs: passed to ``tf_keras.layers.Layer``.
    """
    kwargs.setdefault('autocast', False)
    super().__init__(name=name, **kwargs)
    p = self._params = params
    self._is_training = is_training
    self._image_size = None
    sync = p.use_sync_batch_norm
    self._backbone = None  # SpineNet needs the input size: built lazily.
    self._decoder = None
    if not p.backbone.startswith('spinenet'):
      self._backbone, self._decoder = self._build_backbone()
    configured = layer_hyperparams.configured
    self._rpn_head = configured(dense_prediction_heads.RPNHead(
        min_level=p.min_level, max_level=p.max_level,
        num_anchors_per_location=p.num_anchors_per_location,
        num_convs=p.rpn_num_convs, num_filters=p.rpn_num_filters,
        **layer_hyperparams.model_garden_kwargs(
            p.rpn_hyperparams, p.use_sync_batch_norm, p.norm_momentum,
            p.norm_epsilon)), p.rpn_hyperparams)
    self._roi_generator = roi_generator.MultilevelROIGenerator(
        pre_nms_top_k=p.rpn_pre_nms_top_k,
        pre_nms_score_threshold=p.rpn_score_threshold,
        nms_iou_threshold=p.rpn_nms_iou_threshold,
        num_proposals=p.rpn_num_proposals,
        test_pre_nms_top_k=p.rpn_test_pre_nms_top_k,
        test_pre_nms_score_threshold=p.rpn_score_threshold,
        test_nms_iou_threshold=p.rpn_nms_iou_threshold,
        test_num_proposals=p.rpn_test_num_proposals)
    self._roi_sampler = roi_sampler.ROISampler(
        mix_gt_boxes=True, num_sampled_rois=p.num_sampled_rois,
        foreground_fraction=p.foreground_fraction,
        foreground_iou_threshold=p.foreground_iou_threshold,
        background_iou_high_threshold=p.background_iou_high_threshold,
        background_iou_low_threshold=p.background_iou_low_threshold)
    self._roi_aligner = roi_aligner.MultilevelROIAligner(
        crop_size=p.roi_crop_size)
    self._detection_head = None
    if isinstance(self._backbone, faster_rcnn_keras.SingleLevelBackbone):
      self._detection_head = box_classifier_lib.BoxClassifierHead(
          self._backbone.box_classifier, p.num_classes,
          maxpool_kernel=p.roi_maxpool_kernel,
          maxpool_stride=p.roi_maxpool_stride,
          share_box_across_classes=p.share_box_across_classes,
          dropout_keep_probability=p.box_head_dropout_keep_probability,
          hyperparams=p.box_head_hyperparams, name='detection_head')
    else:
      self._detection_head = configured(instance_heads.DetectionHead(
          num_classes=p.num_classes + 1, num_convs=p.box_head_num_convs,
          num_filters=p.box_head_num_filters, num_fcs=p.box_head_num_fcs,
          fc_dims=p.box_head_fc_dims,
          **layer_hyperparams.model_garden_kwargs(
              p.box_head_hyperparams, p.use_sync_batch_norm,
              p.norm_momentum, p.norm_epsilon),
          name='detection_head'), p.box_head_hyperparams)
    # Decodes and clips the per-class boxes, softmax scores; the NMS is
    # ops.multiclass_nms (Model Garden's caps every class at the total).
    self._detection_generator = detection_generator.DetectionGenerator(
        apply_nms=False, pre_nms_top_k=p.detection_pre_nms_top_k,
        pre_nms_score_threshold=p.detection_score_threshold,
        nms_iou_threshold=p.detection_nms_iou_threshold,
        max_num_detections=p.max_num_detections,
        nms_version='batched' if use_combined_nms(p) else 'v2')
    self._mask_head = self._mask_roi_aligner = None
    self._weight_transfer = self._mlp_mask_branch = None
    self._random_class_embeddings = None
    if p.mask_head is not None:
      m = p.mask_head
      self._mask_roi_aligner = roi_aligner.MultilevelROIAligner(
          crop_size=m.crop_size)
      self._mask_head = upsampling_mask_head.UpsamplingMaskHead(
          m.network_type, num_init_channels=m.num_init_channels,
          crop_size=m.crop_size, upsample_factor=m.upsample_factor,
          num_outputs=class_masks.mask_head_num_outputs(p),
          use_sync_batch_norm=sync, name='mask_head')
      if p.mask_head_hyperparams is not None:
        layer_hyperparams.apply_to_layer(self._mask_head,
                                         p.mask_head_hyperparams)
      (self._weight_transfer, self._mlp_mask_branch,
       self._random_class_embeddings) = class_masks.build_maskx_parts(p)
    self._teacher_mask_head = None
    if (p.mask_head is not None and p.mask_head.teacher_student is not None
        and is_training):
      # Built for training only: an export holds no teacher variable.
      self._teacher_mask_head = teacher_student.build_teacher(p.mask_head,
                                                              sync)
    self._freeze_detector()

  def _build_backbone(self):
    p = self._params
    return deepmarc_backbones.build_backbone_and_decoder(
        p.backbone, p.min_level, p.max_level, p.fpn_num_filters,
        image_size=self._image_size,
        use_sync_batch_norm=p.use_sync_batch_norm,
        norm_momentum=p.norm_momentum, norm_epsilon=p.norm_epsilon,
        backbone_hyperparams=p.backbone_hyperparams,
        decoder_hyperparams=p.decoder_hyperparams)

  @property
  def stage_wise(self):
    """MaskX STAGE_WISE: the detector is frozen, the mask branch trains."""
    return self._params.mask_head is not None and (
        self._params.mask_head.stage_wise)

  def _freeze_detector(self):
    if self.stage_wise:
      for layer in self.detection_layers.values():
        if layer is not None:
          layer.trainable = False

  def _detector_training(self, training):
    """Keras training flag of the detection layers (False when frozen, so
    batch norm keeps the restored statistics)."""
    return False if self.stage_wise else training

  params = property(lambda self: self._params)

  @property
  def detection_layers(self):
    """{'backbone', 'decoder', 'rpn_head', 'detection_head': Model Garden
    layer or None}: every layer whose weights decide the detections (built
    on the first call; SpineNet's backbone too)."""
    return {'backbone': self._backbone, 'decoder': self._decoder,
            'rpn_head': self._rpn_head,
            'detection_head': self._detection_head}
  num_classes = property(lambda self: self._params.num_classes)
  has_masks = property(lambda self: self._mask_head is not None)  # export
  # Box-prompted masks need each box's class (capabilities.needs_box_classes).
  class_specific_masks = property(
      lambda self: self.has_masks and not self._params.mask_head.class_agnostic)

  def _features(self, images, training):
    """{str(level): [B, H / 2^l, W / 2^l, C]} for min_level..max_level."""
    if self._backbone is None:
      self._image_size = tuple(images.shape[1:3])
      self._backbone, self._decoder = self._build_backbone()
      self._freeze_detector()
    training = self._detector_training(training)
    features = self._backbone(images, training=training)
    if self._decoder is not None:
      features = self._decoder(features, training=training)
    return {str(level): features[str(level)] for level in
            range(self._params.min_level, self._params.max_level + 1)}

  # -- lifecycle -----------------------------------------------------------

  def normalize_images(self, images):
    """[B, H, W, 3] float 0..255 RGB at the model's input size ->
    normalized by the channel stats (``preprocess``, the OD API's, also
    resizes and returns the true image shapes)."""
    images = tf.cast(images, tf.float32)
    mean = tf.constant(self._params.channel_means, tf.float32)
    std = tf.constant(self._params.channel_stds, tf.float32)
    return (images - mean) / std

  def predict(self, preprocessed_inputs, true_image_shapes=None,
              training=None, groundtruth=None, **side_inputs):
    """Backbone, FPN, RPN and proposals; the training second stage too when
    ``groundtruth`` is given in training.

    Args:
      preprocessed_inputs: [B, H, W, 3] with static H, W (padded input).
      true_image_shapes: optional int [B, 3]; proposals are clipped to it
        (default: groundtruth's ``true_image_shape``, else the padded size).
      training: Keras training flag (None: the Keras learning phase; in an
        OD API-style call after ``provide_groundtruth``, the mode the model
        was built for).
      groundtruth: optional ``InputFields`` dict (see ``loss``); default:
        the groundtruth of ``provide_groundtruth``, if any.
      **side_inputs: the OD API's side inputs (Context R-CNN); none is
        supported.

    Returns:
      dict: ``features`` {level: [B, h_l, w_l, C]}, ``rpn_scores`` /
      ``rpn_boxes`` {level: [B, h_l, w_l, A] / [.., 4A]}, ``anchor_boxes``
      {level: [h_l, w_l, 4A]} pixels, ``proposals`` [B, P, 4] pixels,
      ``image_shape`` [B, 2], ``preprocessed_inputs``; with groundtruth in
      training also the second-stage keys (see ``second_stage_for_training``).
    """
    self.check_predict_inputs(preprocessed_inputs, side_inputs)
    if groundtruth is None and self.provided_groundtruth() is not None:
      groundtruth = self.provided_groundtruth()
      if training is None:
        training = self._is_training
    height, width = preprocessed_inputs.shape[1:3]
    batch = tf.shape(preprocessed_inputs)[0]
    if true_image_shapes is None and groundtruth is not None:
      true_image_shapes = groundtruth.get(InputFields.TRUE_IMAGE_SHAPE)
    if true_image_shapes is None:
      image_shape = tf.tile(tf.constant([[height, width]], tf.float32),
                            [batch, 1])
    else:
      image_shape = tf.cast(true_image_shapes, tf.float32)[:, :2]
    features = self._features(preprocessed_inputs, training)
    rpn_scores, rpn_boxes = self._rpn_head(
        features, training=self._detector_training(training))
    rpn_scores = {k: tf.cast(v, tf.float32) for k, v in rpn_scores.items()}
    rpn_boxes = {k: tf.cast(v, tf.float32) for k, v in rpn_boxes.items()}
    anchors = targets.anchor_boxes(self._params, height, width)
    batched = {k: tf.tile(v[None], [batch, 1, 1, 1])
               for k, v in anchors.items()}
    proposals, _ = self._roi_generator(rpn_boxes, rpn_scores, batched,
                                       image_shape, training=bool(training))
    predictions = {
        PREPROCESSED_INPUTS: preprocessed_inputs, FEATURES: features,
        RPN_SCORES: rpn_scores, RPN_BOXES: rpn_boxes, ANCHOR_BOXES: anchors,
        PROPOSALS: tf.stop_gradient(proposals), IMAGE_SHAPE: image_shape}
    if training and groundtruth is not None:
      predictions.update(self.second_stage_for_training(
          predictions, groundtruth, training=True))
    return predictions

  def call(self, images, training=None):
    """normalize_images + predict (the model can be called like a
    layer)."""
    return self.predict(self.normalize_images(images), training=training)

  def _box_head(self, features, rois, training):
    training = self._detector_training(training)
    roi_features = self._roi_aligner(features, rois, training=training)
    class_outputs, box_outputs = self._detection_head(roi_features,
                                                      training=training)
    return tf.cast(class_outputs, tf.float32), tf.cast(box_outputs,
                                                       tf.float32)

  def mask_logits(self, features, boxes, classes, training=None, valid=None):
    """[B, M, S', S'] float32 mask logits at boxes [B, M, 4] (pixels), the
    head only on ``valid`` [B, M] boxes when given (others 0); see
    ``mask_rcnn_mask_branch.mask_logits``."""
    row_logits = class_masks.row_logits_fn(
        self._mask_head, self._params.mask_head, self._detection_head,
        self._weight_transfer, self._random_class_embeddings,
        self._mlp_mask_branch, training=training)
    return mask_branch.mask_logits(
        self._mask_roi_aligner, self._mask_head, features, boxes, classes,
        training=training, valid=valid, row_logits=row_logits)

  def build_training_heads(self, prediction_dict):
    """Creates the variables of heads that run in training only (the
    teacher-student teacher), with one box."""
    if self._teacher_mask_head is not None:
      boxes = tf.constant([[[8.0, 8.0, 24.0, 24.0]]], tf.float32)
      mask_branch.mask_logits(
          self._mask_roi_aligner, self._teacher_mask_head,
          prediction_dict[FEATURES], boxes, tf.ones([1, 1], tf.int32),
          training=False)

  def second_stage_for_training(self, prediction_dict, groundtruth,
                                training=True):
    """ROI sampling, box head and mask branch on the training boxes.

    Returns:
      dict: ``sampled_rois`` [B, R, 4], ``class_outputs`` [B, R, K + 1],
      ``box_outputs`` [B, R, 4 (K + 1)], ``class_targets`` [B, R],
      ``box_targets`` [B, R, 4]; with a mask head and groundtruth masks
      ``mask_roi_boxes`` [B, M, 4] (the boxes the mask ROI crop saw),
      ``mask_logits`` / ``mask_targets`` [B, M, S', S'] and
      ``mask_loss_weights`` [B, M].
    """
    p = self._params
    height, width = prediction_dict[PREPROCESSED_INPUTS].shape[1:3]
    features = prediction_dict[FEATURES]
    gt_boxes, gt_classes = targets.groundtruth_in_pixels(
        groundtruth[InputFields.BOXES], groundtruth[InputFields.CLASSES],
        height, width)
    rois, matched_boxes, matched_classes, matched_indices = (
        self._roi_sampler(prediction_dict[PROPOSALS], gt_boxes, gt_classes))
    box_targets = box_ops.encode_boxes(matched_boxes, rois,
                                       weights=list(p.box_regression_weights))
    box_targets = tf.where((matched_classes == 0)[..., None],
                           tf.zeros_like(box_targets), box_targets)
    class_outputs, box_outputs = self._box_head(features, rois, training)
    out = {SAMPLED_ROIS: rois, CLASS_OUTPUTS: class_outputs,
           BOX_OUTPUTS: box_outputs, CLASS_TARGETS: matched_classes,
           BOX_TARGETS: tf.stop_gradient(box_targets)}
    masks = groundtruth.get(InputFields.INSTANCE_MASKS)
    if self._mask_head is None or masks is None:
      return out
    m = p.mask_head
    if self._teacher_mask_head is not None:
      out.update(teacher_student.training_masks(
          m, self._mask_roi_aligner, self._mask_head, self._teacher_mask_head,
          features, gt_boxes, groundtruth,
          (rois, matched_classes, matched_indices), training=training))
      return out
    selection = targets.mask_training_boxes(
        m.box_source, gt_boxes, groundtruth[InputFields.CLASSES],
        mask_weights.instance_mask_weights(
            groundtruth[InputFields.CLASSES], m.allowed_masked_classes_ids,
            groundtruth.get(InputFields.MASK_WEIGHTS),
            groundtruth.get(InputFields.WEIGHTS)),
        sampled=(rois, matched_classes, matched_indices),
        num_sampled_masks=m.num_sampled_masks)
    boxes = tf.stop_gradient(selection['boxes'])
    out[MASK_ROI_BOXES] = boxes
    # Boxes with mask weight 0 (padding, unseen classes, background
    # proposals) add nothing to the loss: the mask head skips them.
    out[MASK_LOGITS] = self.mask_logits(features, boxes,
                                        selection['classes'], training,
                                        valid=selection['weights'] > 0)
    mask_shape = tf.shape(masks)
    scale = tf.cast(tf.stack([mask_shape[2], mask_shape[3]] * 2), tf.float32)
    out[MASK_TARGETS] = mask_targets.crop_instance_masks(
        masks, boxes / scale, m.mask_size,
        crop_method=mask_targets.CROP_AND_RESIZE,
        instance_indices=selection['instance_indices'])
    out[MASK_WEIGHTS] = selection['weights']
    return out

  def loss(self, prediction_dict, groundtruth=None, training=None):
    """RPN, Fast R-CNN and mask losses (OD API Faster R-CNN loss names).

    Args:
      prediction_dict: output of ``predict`` (with or without groundtruth).
      groundtruth: ``InputFields`` dict: ``groundtruth_boxes`` [B, N, 4]
        normalized to the padded input, ``groundtruth_classes`` [B, N]
        1-based (0 padding), ``groundtruth_instance_masks`` [B, N, H, W]
        (absent: no mask loss), ``groundtruth_instance_mask_weights`` [B, N]
        (absent: weights restricted to ``allowed_masked_classes_ids``).
        Or, OD API style, ``true_image_shapes`` [B, 3] / None: the
        groundtruth of ``provide_groundtruth`` is used.
      training: training mode of the second stage if ``predict`` did not
        run it.

    Returns:
      dict of float32 scalars, see ``mask_rcnn_losses.LOSS_NAMES``.
    """
    groundtruth, training = self.loss_inputs(groundtruth, training)
    stage = prediction_dict
    if CLASS_OUTPUTS not in prediction_dict:
      stage = self.second_stage_for_training(prediction_dict, groundtruth,
                                             training=bool(training))
    height, width = prediction_dict[PREPROCESSED_INPUTS].shape[1:3]
    gt_boxes, gt_classes = targets.groundtruth_in_pixels(
        groundtruth[InputFields.BOXES], groundtruth[InputFields.CLASSES],
        height, width)
    score_targets, box_targets = targets.rpn_targets(
        prediction_dict[ANCHOR_BOXES], gt_boxes, gt_classes, self._params)
    return mask_rcnn_losses.all_losses(
        self._params, prediction_dict, stage, score_targets, box_targets)

  def postprocess(self, prediction_dict, true_image_shapes=None):
    """Detections (box head on the proposals + NMS) and their masks.

    Args:
      prediction_dict: output of ``predict``.
      true_image_shapes: int [B, 3]; None = the padded input size.

    Returns:
      dict: ``detection_boxes`` [B, K, 4] normalized to the true image,
      ``detection_scores`` [B, K], ``detection_classes`` int32 [B, K]
      0-based, ``num_detections`` int32 [B], ``detection_multiclass_scores``
      [B, K, num_classes + 1] (softmax, background first, as the OD API's
      Faster R-CNN), ``detection_masks`` [B, K, S', S'] box-relative
      probabilities (with a mask head); padded slots are zeros.
    """
    image_shape = self._true_image_shape(prediction_dict, true_image_shapes)
    features = prediction_dict[FEATURES]
    rois = prediction_dict[PROPOSALS]
    class_outputs, box_outputs = self._box_head(features, rois, False)
    class_outputs = postprocess_lib.without_padded_proposals(class_outputs,
                                                             rois)
    decoded = self._detection_generator(
        box_outputs, class_outputs, rois, image_shape,
        list(self._params.box_regression_weights), bbox_per_class=True)
    p = self._params
    boxes, scores, classes, num_detections = multiclass_nms.multiclass_nms(
        decoded['decoded_boxes'], decoded['decoded_box_scores'],
        max_detections_per_class=p.max_detections_per_class or
        p.max_num_detections,
        max_total_detections=p.max_num_detections,
        iou_threshold=p.detection_nms_iou_threshold,
        score_threshold=p.detection_score_threshold,
        pre_nms_top_k=p.detection_pre_nms_top_k, fused=use_combined_nms(p))
    classes = classes + 1  # 1-based (0 = background), as the box head's.
    scale = tf.concat([image_shape, image_shape], axis=-1)[:, None, :]
    out = {
        'detection_boxes': tf.clip_by_value(boxes / scale, 0.0, 1.0),
        'detection_scores': tf.cast(scores, tf.float32),
        'detection_classes': tf.maximum(classes - 1, 0),
        'num_detections': num_detections,
    }
    out[DETECTION_MULTICLASS_SCORES] = postprocess_lib.multiclass_scores(
        class_outputs, box_outputs, rois, image_shape, boxes, classes,
        out['detection_scores'], out['num_detections'],
        self._params.box_regression_weights)
    if self._mask_head is not None:
      # The costly mask head runs on the real detections only.
      real = tf.sequence_mask(out['num_detections'], tf.shape(boxes)[1])
      logits = self.mask_logits(features, boxes, classes, training=False,
                                valid=real)
      out[DETECTION_MASKS] = tf.sigmoid(logits) * tf.cast(
          real, tf.float32)[..., None, None]
    return out

  def predict_masks_from_boxes(self, prediction_dict, boxes,
                               true_image_shapes=None, classes=None):
    """Box-prompted masks: the mask head at caller-given boxes.

    Args:
      prediction_dict: output of ``predict``.
      boxes: [B, N, 4] normalized to the true image.
      true_image_shapes: int [B, 3]; None = the padded input size.
      classes: [B, N] 0-based classes; required by class-specific heads
        (the mask is the channel of the box's class), ignored otherwise.

    Returns:
      {'detection_masks': [B, N, S', S'] float32 box-relative
      probabilities}.
    """
    if self._mask_head is None:
      raise ValueError('This model has no mask head (number_of_stages: 2); '
                       'it cannot segment boxes.')
    image_shape = self._true_image_shape(prediction_dict, true_image_shapes)
    scale = tf.concat([image_shape, image_shape], axis=-1)[:, None, :]
    pixels = tf.cast(boxes, tf.float32) * scale
    if classes is None:
      if not self._params.mask_head.class_agnostic:
        raise ValueError(
            'This model predicts class-specific masks (model.faster_rcnn.'
            'deepmarc_mask_head.class_agnostic: false): pass the class of '
            'each box (classes [batch, num_boxes]) with the boxes.')
      classes = tf.zeros(tf.shape(pixels)[:2], tf.int32)
    logits = self.mask_logits(prediction_dict[FEATURES], pixels,
                              tf.cast(classes, tf.int32) + 1, training=False)
    return {DETECTION_MASKS: tf.sigmoid(logits)}

  def _true_image_shape(self, prediction_dict, true_image_shapes):
    return (prediction_dict[IMAGE_SHAPE] if true_image_shapes is None else
            tf.cast(true_image_shapes, tf.float32)[:, :2])

  def regularization_losses(self):
    """[float32 scalar] L2 weight decay per part the config regularizes."""
    box_head = [self._detection_head]
    if isinstance(self._detection_head, box_classifier_lib.BoxClassifierHead):
      # Its box classifier is the backbone's tail (part of the backbone).
      box_head = [self._detection_head.class_predictor,
                  self._detection_head.box_predictor]
    parts = {params_lib.PART_BACKBONE: [self._backbone, self._decoder],
             params_lib.PART_RPN: [self._rpn_head],
             params_lib.PART_BOX_HEAD: box_head,
             params_lib.PART_MASK_HEAD: [self._mask_head,
                                         self._weight_transfer,
                                         self._mlp_mask_branch,
                                         self._teacher_mask_head]}
    return mask_rcnn_losses.l2_weight_decay_losses(
        parts, self._params.l2_weight_decay)

  def restore_from_objects(self, fine_tune_checkpoint_type='detection'):
    """Checkpoint objects: 'detection' (backbone + FPN; STAGE_WISE: the
    whole detector, RPN and box head too), 'classification' (a single-level
    backbone's ``classification_backbone``, saved as ``feature_extractor``)
    or 'full'."""
    if fine_tune_checkpoint_type == 'classification':
      return detection_model.classification_objects(self._backbone)
    if fine_tune_checkpoint_type == 'detection':
      parts = {'_backbone': self._backbone, '_decoder': self._decoder}
      if self.stage_wise:
        parts.update(_rpn_head=self._rpn_head,
                     _detection_head=self._detection_head)
      parts = {k: v for k, v in parts.items() if v is not None}
      return {'model': tf.train.Checkpoint(**parts)}
    if fine_tune_checkpoint_type == 'full':
      return {'model': self}
    raise ConfigError(
        'train_config.fine_tune_checkpoint_type: Deep-MARC supports '
        f'"detection", "classification" or "full", got '
        f'{fine_tune_checkpoint_type!r}.')
