"""Deep-MARC post-processing and training shortcuts: multiclass scores of
the kept detections, the mask head only on real detections / weighted
instances (same outputs), L2 weight decay from the config."""

import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf import config as config_lib
from deepmac_tf.builders import mask_rcnn_builder
from deepmac_tf.errors import ConfigError
from deepmac_tf.meta_architectures import mask_rcnn
from tests import test_mask_rcnn as base


@pytest.fixture(scope='module')
def model_and_outputs():
  tf.random.set_seed(3)
  model = mask_rcnn.MaskRCNNMetaArch(True, base._params())
  images = tf.random.stateless_uniform([2, base.SIZE, base.SIZE, 3], (4, 5),
                                       0, 255)
  predictions = model.predict(model.normalize_images(images), training=False)
  return model, predictions, model.postprocess(predictions)


def test_multiclass_scores_belong_to_the_kept_detections(model_and_outputs):
  _, _, out = model_and_outputs
  scores = out['detection_multiclass_scores'].numpy()
  k = out['detection_scores'].shape[1]
  assert scores.shape == (2, k, base.NUM_CLASSES + 1)
  for b, n in enumerate(out['num_detections'].numpy()):
    assert n > 0
    np.testing.assert_allclose(scores[b, :n].sum(-1), 1.0, rtol=1e-5)
    # Background first: the detection's class is column class + 1.
    picked = scores[b, np.arange(n), out['detection_classes'][b, :n] + 1]
    np.testing.assert_allclose(picked, out['detection_scores'][b, :n],
                               rtol=1e-5)
    assert (scores[b, n:] == 0).all()


def _postprocess_with(model, predictions, **changes):
  """``model.postprocess`` with some params changed for the call."""
  import dataclasses  # pylint: disable=g-import-not-at-top
  params = model.params
  model._params = dataclasses.replace(params, **changes)  # pylint: disable=protected-access
  try:
    return model.postprocess(predictions)
  finally:
    model._params = params  # pylint: disable=protected-access


def test_combined_nms_keeps_the_detections_of_the_padded_nms(
    model_and_outputs):
  model, predictions, out = model_and_outputs
  assert mask_rcnn.use_combined_nms(model.params)  # CPU, all proposals.
  padded = _postprocess_with(model, predictions, use_combined_nms=False)
  np.testing.assert_array_equal(padded['num_detections'],
                                out['num_detections'])
  for key in ('detection_boxes', 'detection_scores', 'detection_classes',
              'detection_multiclass_scores', 'detection_masks'):
    np.testing.assert_allclose(padded[key], out[key], atol=1e-6, err_msg=key)


@pytest.mark.parametrize('version', ['batched', 'v2'])
def test_uncapped_detections_equal_model_gardens_generator(model_and_outputs,
                                                           version):
  """max_detections_per_class unset (= the total): the detections of Model
  Garden's DetectionGenerator with its own NMS, in either form."""
  from official.vision.modeling.layers import detection_generator  # pylint: disable=g-import-not-at-top
  from deepmac_tf.meta_architectures import mask_rcnn_postprocess  # pylint: disable=g-import-not-at-top
  model, predictions, out = model_and_outputs
  assert model.params.max_detections_per_class is None
  if version == 'v2':
    out = _postprocess_with(model, predictions, use_combined_nms=False)
  config = dict(model._detection_generator.get_config(),  # pylint: disable=protected-access
                apply_nms=True, nms_version=version)
  rois = predictions['proposals']
  class_outputs, box_outputs = model._box_head(  # pylint: disable=protected-access
      predictions['features'], rois, False)
  class_outputs = mask_rcnn_postprocess.without_padded_proposals(
      class_outputs, rois)
  size = tf.constant([[base.SIZE, base.SIZE]] * 2, tf.float32)
  reference = detection_generator.DetectionGenerator(**config)(
      box_outputs, class_outputs, rois, size,
      list(model.params.box_regression_weights), bbox_per_class=True)
  np.testing.assert_array_equal(out['num_detections'],
                                reference['num_detections'])
  for b, n in enumerate(out['num_detections'].numpy()):
    np.testing.assert_allclose(out['detection_boxes'][b, :n] * base.SIZE,
                               reference['detection_boxes'][b, :n],
                               atol=1e-4)
    np.testing.assert_allclose(out['detection_scores'][b, :n],
                               reference['detection_scores'][b, :n],
                               atol=1e-6)
    np.testing.assert_array_equal(out['detection_classes'][b, :n] + 1,
                                  reference['detection_classes'][b, :n])


@pytest.mark.parametrize('fused', [True, False])
def test_max_detections_per_class_caps_each_class(model_and_outputs, fused):
  """The OD API's max_detections_per_class: at most 1 box per class (3
  classes) of the 5 kept; static shapes and masks follow."""
  model, predictions, out = model_and_outputs
  assert (out['num_detections'].numpy() > base.NUM_CLASSES).any()
  capped = _postprocess_with(model, predictions, max_detections_per_class=1,
                             use_combined_nms=fused)
  assert capped['detection_boxes'].shape == out['detection_boxes'].shape
  assert capped['detection_masks'].shape == out['detection_masks'].shape
  for b, n in enumerate(capped['num_detections'].numpy()):
    classes = capped['detection_classes'][b, :n].numpy()
    assert 0 < n <= base.NUM_CLASSES and len(set(classes)) == n
    # Each class keeps its best box: the uncapped top box of that class.
    full = out['detection_classes'][b, :out['num_detections'][b]].numpy()
    for i, c in enumerate(classes):
      if c not in full:  # Crowded out of the uncapped top 5.
        continue
      first = int(np.argmax(full == c))
      np.testing.assert_allclose(capped['detection_scores'][b, i],
                                 out['detection_scores'][b, first],
                                 atol=1e-6)
    assert (capped['detection_masks'][b, n:].numpy() == 0).all()


def test_padded_proposals_never_become_detections():
  from official.vision.modeling.layers import detection_generator  # pylint: disable=g-import-not-at-top
  from deepmac_tf.meta_architectures import mask_rcnn_postprocess  # pylint: disable=g-import-not-at-top
  rois = tf.constant([[[0., 0., 20., 20.], [30., 30., 60., 50.],
                       [10., 40., 30., 60.], [0., 0., 0., 0.],
                       [0., 0., 0., 0.], [0., 0., 0., 0.]]])
  logits = tf.tile(tf.constant([[[0., 5., 0.]]]), [1, 6, 1])  # Class 1.
  deltas = tf.zeros([1, 6, 12])
  generator = detection_generator.DetectionGenerator(
      pre_nms_score_threshold=0.05, nms_iou_threshold=0.5,
      max_num_detections=10, nms_version='batched')

  def detect(class_outputs):
    out = generator(deltas, class_outputs, rois, tf.constant([[64., 64.]]),
                    [10., 10., 5., 5.], bbox_per_class=True)
    n = int(out['num_detections'][0])
    return n, out['detection_boxes'][0, :n].numpy()

  n, _ = detect(logits)
  assert n == 6  # The fused NMS keeps the three empty padding boxes.
  n, boxes = detect(mask_rcnn_postprocess.without_padded_proposals(logits,
                                                                   rois))
  assert n == 3
  assert ((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])).all()


def test_nms_choice_follows_the_params():
  import dataclasses  # pylint: disable=g-import-not-at-top
  params = base._params()
  assert not mask_rcnn.use_combined_nms(
      dataclasses.replace(params, use_combined_nms=False))
  # A pre-NMS top-k below the proposal count needs the padded NMS's top-k.
  assert not mask_rcnn.use_combined_nms(dataclasses.replace(
      params, detection_pre_nms_top_k=params.rpn_test_num_proposals - 1))


def test_masks_of_real_detections_equal_the_head_on_all_boxes(
    model_and_outputs):
  model, predictions, out = model_and_outputs
  pixels = out['detection_boxes'] * float(base.SIZE)
  everywhere = tf.sigmoid(model.mask_logits(
      predictions['features'], pixels, out['detection_classes'] + 1,
      training=False)).numpy()
  masks = out['detection_masks'].numpy()
  for b, n in enumerate(out['num_detections'].numpy()):
    np.testing.assert_allclose(masks[b, :n], everywhere[b, :n], atol=1e-5)
    assert (masks[b, n:] == 0).all()


def test_training_mask_logits_skip_weightless_instances(model_and_outputs):
  model, _, _ = model_and_outputs
  images = tf.random.stateless_uniform([1, base.SIZE, base.SIZE, 3], (1, 2),
                                       0, 255)
  gt = base._groundtruth(mask_weights=(1.0, 0.0, 0.0))
  stage = model.predict(model.normalize_images(images), training=True,
                        groundtruth=gt)
  logits = stage[mask_rcnn.MASK_LOGITS].numpy()
  assert logits.shape[:2] == (1, 3)
  assert np.abs(logits[0, 0]).sum() > 0
  assert (logits[0, 1:] == 0).all()


_L2 = '''
model { faster_rcnn {
  feature_extractor { conv_hyperparams { regularizer {
    l2_regularizer { weight: 0.001 } } } }
  second_stage_box_predictor { mask_rcnn_box_predictor { conv_hyperparams {
    regularizer { l2_regularizer { weight: 0.002 } } } } }
} }
'''


def _faster_rcnn(override):
  with open(base_config(), encoding='utf-8') as f:
    text = f.read()
  return config_lib.get_pipeline_config_from_text(
      text, source='deepmarc', config_override=override).model.faster_rcnn


def base_config():
  import os  # pylint: disable=g-import-not-at-top
  return os.path.join(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))), 'configs', 'deepmarc_synthetic_cpu.config')


def test_l2_weight_decay_from_the_config():
  params = mask_rcnn_builder.params_from_proto(_faster_rcnn(_L2))
  assert dict(params.l2_weight_decay) == pytest.approx(
      {'backbone': 0.001, 'mask_head': 0.002})
  model = mask_rcnn.MaskRCNNMetaArch(True, params)
  model.mask_logits(model(tf.zeros([1, 64, 64, 3]))['features'],
                    tf.constant([[[0., 0., 32., 32.]]]), tf.ones([1, 1]))
  losses = model.regularization_losses()
  assert len(losses) == 2 and all(float(l) > 0 for l in losses)
  kernels = [v for v in model._mask_head.trainable_variables  # pylint: disable=protected-access
             if 'kernel' in v.name.split('/')[-1]]
  expected = 0.002 * sum(float(tf.reduce_sum(v ** 2)) / 2 for v in kernels)
  assert float(losses[1]) == pytest.approx(expected, rel=1e-4)


def test_l1_regularizer_names_the_field():
  with pytest.raises(ConfigError, match=r'first_stage_box_predictor_conv_'
                     r'hyperparams.regularizer.l1_regularizer'):
    mask_rcnn_builder.params_from_proto(_faster_rcnn('''
      model { faster_rcnn { first_stage_box_predictor_conv_hyperparams {
        regularizer { l1_regularizer { weight: 0.1 } } } } }'''))


def test_allowed_classes_restrict_given_mask_weights_too():
  from deepmac_tf.ops import mask_weights  # pylint: disable=g-import-not-at-top
  weights = mask_weights.instance_mask_weights(
      tf.constant([[1, 2, 3, 0]]), (2, 3), tf.constant([[1., 1., 0., 0.]]))
  np.testing.assert_array_equal(weights.numpy(), [[0., 1., 0., 0.]])


def test_mixed_bfloat16_keeps_float32_losses_and_outputs():
  import tf_keras  # pylint: disable=g-import-not-at-top
  tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    model = mask_rcnn.MaskRCNNMetaArch(True, base._params())
  finally:
    tf_keras.mixed_precision.set_global_policy('float32')
  images = tf.random.stateless_uniform([1, base.SIZE, base.SIZE, 3], (1, 2),
                                       0, 255)
  gt = base._groundtruth()
  with tf.GradientTape() as tape:
    predictions = model.predict(model.normalize_images(images), training=True,
                                groundtruth=gt)
    losses = model.loss(predictions, gt, training=True)
    total = tf.add_n(list(losses.values()))
  grads = tape.gradient(total, model.trainable_variables)
  assert all(v.dtype == tf.float32 for v in losses.values())
  assert all(g is not None for g in grads)
  out = model.postprocess(model.predict(model.normalize_images(images),
                                        training=False))
  assert out['detection_masks'].dtype == tf.float32
  assert out['detection_multiclass_scores'].dtype == tf.float32


def test_build_model_variables_creates_every_variable():
  """Before training (optimizer slots, fine-tune restore) and before a
  checkpoint of initial weights, the box and mask heads must exist too."""
  from deepmac_tf.builders import model_variables  # pylint: disable=g-import-not-at-top
  model = mask_rcnn.MaskRCNNMetaArch(True, base._params())
  model_variables.build_model_variables(model, base.SIZE, base.SIZE)
  layers = model.detection_layers
  assert all(layers[k].weights for k in ('backbone', 'rpn_head',
                                         'detection_head'))
  assert model._mask_head.weights  # pylint: disable=protected-access
  count = len(model.weights)
  model.postprocess(model.predict(model.normalize_images(
      tf.zeros([1, base.SIZE, base.SIZE, 3])), training=False))
  assert len(model.weights) == count
