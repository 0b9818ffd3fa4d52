"""Model Garden's ``official.projects.deepmac_maskrcnn`` model with the
settings of one of our ``MaskRCNNParams``: the reference Deep-MARC is
compared against (parameter counts and output shapes in
``tests/test_mask_rcnn_reference.py``, speed in ``scripts/benchmark.py``).

Benchmark / test code only: the library never imports it.

``ReferenceModel`` wraps the Model Garden model with an inference function
and a training step that does what Model Garden's ``MaskRCNNTask`` does:
RPN anchor labels (``RpnAnchorLabeler``, computed here inside the step as
our model does inside its loss; Model Garden computes them in its input
pipeline), forward with groundtruth, ``task.build_losses``, gradients and
one optimizer update.
"""

import tensorflow as tf
import tf_keras
from official.vision.ops import anchor

from deepmac_tf import graph_functions
from deepmac_tf.data.fields import InputFields
from deepmac_tf.errors import ConfigError
from deepmac_tf.meta_architectures import mask_rcnn_params as params_lib

# Our catalogue name -> Model Garden DeepMaskHead.convnet_variant.
_VARIANTS = {
    'mask_rcnn_fcn': 'default',
    'hourglass20': 'hourglass20',
    'hourglass52': 'hourglass52',
    'hourglass100': 'hourglass100',
}


def _modules():
  try:
    # pylint: disable=g-import-not-at-top
    from official.projects.deepmac_maskrcnn.configs import deep_mask_head_rcnn
    from official.projects.deepmac_maskrcnn.tasks import (
        deep_mask_head_rcnn as task_lib)
  except ImportError as e:
    raise ConfigError('--reference=model_garden needs '
                      f'official.projects.deepmac_maskrcnn: {e}') from None
  return deep_mask_head_rcnn, task_lib


def convnet_variant(network_type):
  """Model Garden's name for our mask head, or ConfigError."""
  if network_type not in _VARIANTS:
    raise ConfigError(
        f'model.faster_rcnn.deepmarc_mask_head.network_type: {network_type!r} '
        'has no Model Garden deepmac_maskrcnn counterpart (it has '
        f'{", ".join(sorted(_VARIANTS))}).')
  return _VARIANTS[network_type]


def _backbone(config, backbone_name):
  if backbone_name.startswith('spinenet'):
    config.backbone.type = 'spinenet'
    config.backbone.spinenet.model_id = backbone_name[len('spinenet'):]
    config.backbone.spinenet.min_level = config.min_level
    config.backbone.spinenet.max_level = config.max_level
    config.decoder.type = 'identity'
    return
  depth = ''.join(c for c in backbone_name if c.isdigit())
  if not depth or not backbone_name.replace('faster_rcnn_', '').startswith(
      'resnet'):
    raise ConfigError(f'model.faster_rcnn.feature_extractor.type: '
                      f'{backbone_name!r} has no Model Garden counterpart.')
  config.backbone.type = 'resnet'
  config.backbone.resnet.model_id = int(depth)
  config.decoder.type = 'fpn'


def reference_config(params, image_size):
  """``DeepMaskHeadRCNN`` config equal to ``params`` at ``image_size``.

  Args:
    params: our ``MaskRCNNParams``.
    image_size: (height, width) of the model input.
  """
  configs, _ = _modules()
  mask = params.mask_head
  config = configs.DeepMaskHeadRCNN(
      num_classes=params.num_classes + 1,
      input_size=[int(image_size[0]), int(image_size[1]), 3],
      include_mask=mask is not None,
      use_gt_boxes_for_masks=(mask is not None and
                              mask.box_source == params_lib.GROUNDTRUTH))
  config.min_level, config.max_level = params.min_level, params.max_level
  _backbone(config, params.backbone)
  if config.decoder.type == 'fpn':
    config.decoder.fpn.num_filters = params.fpn_num_filters
  config.norm_activation.use_sync_bn = params.use_sync_batch_norm
  config.norm_activation.norm_momentum = params.norm_momentum
  config.norm_activation.norm_epsilon = params.norm_epsilon
  config.anchor.num_scales = params.anchor_num_scales
  config.anchor.aspect_ratios = list(params.anchor_aspect_ratios)
  config.anchor.anchor_size = params.anchor_size
  config.rpn_head.num_convs = params.rpn_num_convs
  config.rpn_head.num_filters = params.rpn_num_filters
  gen = config.roi_generator
  gen.pre_nms_top_k = params.rpn_pre_nms_top_k
  gen.nms_iou_threshold = params.rpn_nms_iou_threshold
  gen.num_proposals = params.rpn_num_proposals
  gen.test_pre_nms_top_k = params.rpn_test_pre_nms_top_k
  gen.test_nms_iou_threshold = params.rpn_nms_iou_threshold
  gen.test_num_proposals = params.rpn_test_num_proposals
  sampler = config.roi_sampler
  sampler.num_sampled_rois = params.num_sampled_rois
  sampler.foreground_fraction = params.foreground_fraction
  sampler.foreground_iou_threshold = params.foreground_iou_threshold
  sampler.background_iou_high_threshold = params.background_iou_high_threshold
  sampler.background_iou_low_threshold = params.background_iou_low_threshold
  config.roi_aligner.crop_size = params.roi_crop_size
  head = config.detection_head
  head.num_convs = params.box_head_num_convs
  head.num_filters = params.box_head_num_filters
  head.num_fcs = params.box_head_num_fcs
  head.fc_dims = params.box_head_fc_dims
  det = config.detection_generator
  det.pre_nms_top_k = params.detection_pre_nms_top_k
  det.pre_nms_score_threshold = params.detection_score_threshold
  det.nms_iou_threshold = params.detection_nms_iou_threshold
  det.max_num_detections = params.max_num_detections
  per_class = params.max_detections_per_class
  if per_class is not None and per_class < params.max_num_detections:
    raise ConfigError(
        'model.faster_rcnn.second_stage_post_processing.'
        f'batch_non_max_suppression.max_detections_per_class: {per_class} < '
        f'max_total_detections {params.max_num_detections}; Model Garden\'s '
        'DetectionGenerator has no per-class cap, so --reference='
        'model_garden needs max_detections_per_class >= '
        'max_total_detections.')
  if mask is not None:
    config.mask_head.convnet_variant = convnet_variant(mask.network_type)
    config.mask_head.num_filters = mask.num_init_channels
    config.mask_head.class_agnostic = mask.class_agnostic
    config.mask_head.upsample_factor = mask.upsample_factor
    config.mask_roi_aligner.crop_size = mask.crop_size
    config.mask_sampler.num_sampled_masks = mask.num_sampled_masks
  return config


def build_reference(params, image_size):
  """Model Garden's ``DeepMaskRCNNModel`` with the settings of ``params``."""
  _, task_lib = _modules()
  config = reference_config(params, image_size)
  return task_lib.build_maskrcnn(
      tf_keras.layers.InputSpec(shape=[None] + list(config.input_size)),
      config)


def _task(params, image_size):
  configs, task_lib = _modules()
  task_config = configs.DeepMaskHeadRCNNTask(
      model=reference_config(params, image_size))
  losses = task_config.losses
  losses.rpn_huber_loss_delta = params.rpn_huber_loss_delta
  losses.frcnn_huber_loss_delta = params.frcnn_huber_loss_delta
  losses.rpn_score_weight = params.rpn_score_loss_weight
  losses.rpn_box_weight = params.rpn_box_loss_weight
  losses.frcnn_class_weight = params.frcnn_class_loss_weight
  losses.frcnn_box_weight = params.frcnn_box_loss_weight
  losses.mask_weight = params.mask_loss_weight
  allowed = (params.mask_head.allowed_masked_classes_ids
             if params.mask_head is not None else ())
  if allowed:
    task_config.allowed_mask_class_ids = [int(i) for i in allowed]
  return task_lib.DeepMaskHeadRCNNTask(task_config)


class ReferenceModel:
  """Model Garden's model plus its inference and training functions.

  Inputs are our ``InputFields`` batches (images 0..255, boxes normalized,
  classes 1-based, image-sized masks), converted to Model Garden's
  conventions outside the timed functions (as its input pipeline would).
  """

  def __init__(self, params, image_size, optimizer=None):
    self.params = params
    self.image_size = (int(image_size[0]), int(image_size[1]))
    self.model = build_reference(params, self.image_size)
    self.task = _task(params, self.image_size)
    self.optimizer = optimizer
    self._anchors = anchor.build_anchor_generator(
        min_level=params.min_level, max_level=params.max_level,
        num_scales=params.anchor_num_scales,
        aspect_ratios=list(params.anchor_aspect_ratios),
        anchor_size=params.anchor_size)(image_size=self.image_size)
    self._labeler = anchor.RpnAnchorLabeler(
        match_threshold=params.rpn_match_threshold,
        unmatched_threshold=params.rpn_unmatched_threshold,
        rpn_batch_size_per_im=params.rpn_batch_size_per_im,
        rpn_fg_fraction=params.rpn_fg_fraction)
    self.infer = graph_functions.function(self._infer)
    self.train_step = graph_functions.function(self._train_step)

  def share_detection_weights(self, ours):
    """Copies our backbone, FPN, RPN and box-head weights into Model
    Garden's model, so that both make the same detections on the same image
    (the same Model Garden layers with the same settings: the same variables
    in the same order). The mask heads keep their own weights: those change
    no detection, so neither the work either model does.

    Both models must have been called once (variables exist).

    Args:
      ours: our ``MaskRCNNMetaArch``.

    Raises:
      ValueError: naming the part and variable whose shapes differ.
    """
    theirs = {'backbone': self.model.backbone, 'decoder': self.model.decoder,
              'rpn_head': self.model.rpn_head,
              'detection_head': self.model.detection_head[0]}
    for part, layer in ours.detection_layers.items():
      if layer is None and theirs[part] is None:
        continue
      mine, their = layer.weights, theirs[part].weights
      if len(mine) != len(their):
        raise ValueError(f'{part}: {len(mine)} weights here, {len(their)} in '
                         'Model Garden\'s model.')
      for a, b in zip(mine, their):
        if a.shape != b.shape:
          raise ValueError(f'{part}: {a.name} {a.shape} vs Model Garden '
                           f'{b.name} {b.shape}.')
        b.assign(a)

  def num_params(self):
    return sum(int(tf.size(w)) for w in self.model.weights)

  def _normalize(self, images):
    mean = tf.constant(self.params.channel_means, tf.float32)
    std = tf.constant(self.params.channel_stds, tf.float32)
    return (tf.cast(images, tf.float32) - mean) / std

  def _image_shape(self, batch):
    return tf.tile(tf.constant([self.image_size], tf.float32), [batch, 1])

  def _infer(self, images):
    """[B, H, W, 3] 0..255 -> Model Garden's detection outputs."""
    return self.model(self._normalize(images),
                      image_shape=self._image_shape(tf.shape(images)[0]),
                      training=False)

  def labels(self, groundtruth):
    """Our groundtruth dict -> Model Garden's (gt_boxes pixels, gt_classes,
    gt_masks cropped to each box at the mask target size)."""
    height, width = self.image_size
    scale = tf.constant([height, width, height, width], tf.float32)
    boxes = groundtruth[InputFields.BOXES]
    valid = groundtruth[InputFields.WEIGHTS] > 0
    pixels = tf.where(valid[..., None], boxes * scale, -1.0)
    classes = tf.where(valid, groundtruth[InputFields.CLASSES], -1)
    labels = {'gt_boxes': pixels, 'gt_classes': classes}
    mask = self.params.mask_head
    masks = groundtruth.get(InputFields.INSTANCE_MASKS)
    if mask is not None and masks is not None:
      size = 4 * mask.mask_size  # Model Garden's parser crops at 112 for 28.
      batch, num = boxes.shape[:2]
      flat = tf.reshape(masks, [-1, height, width, 1])
      crops = tf.image.crop_and_resize(
          flat, tf.reshape(boxes, [-1, 4]), tf.range(batch * num),
          [size, size])
      labels['gt_masks'] = tf.reshape(crops, [batch, num, size, size])
    return labels

  def _rpn_targets(self, gt_boxes, gt_classes):
    scores, boxes = {}, {}
    per_image = []
    for i in range(gt_boxes.shape[0]):
      valid = gt_classes[i] > 0
      per_image.append(self._labeler.label_anchors(
          self._anchors, tf.boolean_mask(gt_boxes[i], valid),
          tf.boolean_mask(gt_classes[i], valid)[:, None]))
    for level in self._anchors:
      scores[level] = tf.stack([s[level] for s, _ in per_image])
      boxes[level] = tf.stack([b[level] for _, b in per_image])
    return scores, boxes

  def _train_step(self, images, labels):
    batch = images.shape[0]
    score_targets, box_targets = self._rpn_targets(labels['gt_boxes'],
                                                   labels['gt_classes'])
    anchors = {k: tf.tile(v[None], [batch, 1, 1, 1])
               for k, v in self._anchors.items()}
    kwargs = {'image_shape': self._image_shape(batch),
              'anchor_boxes': anchors, 'gt_boxes': labels['gt_boxes'],
              'gt_classes': labels['gt_classes'], 'training': True}
    if 'gt_masks' in labels:
      kwargs['gt_masks'] = labels['gt_masks']
    variables = self.model.trainable_variables
    with tf.GradientTape() as tape:
      outputs = self.model(self._normalize(images), **kwargs)
      outputs = tf.nest.map_structure(lambda x: tf.cast(x, tf.float32),
                                      outputs)
      losses = self.task.build_losses(
          outputs, {'rpn_score_targets': score_targets,
                    'rpn_box_targets': box_targets},
          aux_losses=self.model.losses)
    gradients = tape.gradient(losses['total_loss'], variables)
    self.optimizer.apply_gradients(
        [(g, v) for g, v in zip(gradients, variables) if g is not None])
    return losses
