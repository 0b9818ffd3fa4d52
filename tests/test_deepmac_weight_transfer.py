"""MaskX weight transfer on Deep-MAC: T predicts each class's mask
projection from the class's center-heatmap output weights (config reading,
stop-gradient, allowed classes, the class channel at inference, export)."""

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf

import pipeline_fixtures
from test_deepmac import _groundtruth
from test_deepmac import _images
from test_deepmac import NUM_CLASSES
from test_deepmac import TinyExtractor
from deepmac_tf.builders import deepmac_builder
from deepmac_tf.errors import ConfigError
from deepmac_tf.mask_heads import weight_transfer as transfer_lib
from deepmac_tf.meta_architectures import center_net
from deepmac_tf.meta_architectures import center_net_params
from deepmac_tf.meta_architectures import deepmac
from deepmac_tf.meta_architectures import deepmac_weight_transfer
from deepmac_tf.meta_architectures import mask_rcnn_params
from deepmac_tf.protos import center_net_pb2
from google.protobuf import text_format

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, 'configs',
                      'center_net_deepmac_maskx_synthetic_cpu.config')
FIELD = 'model.center_net.deepmac_mask_estimation'
CENTER_WIDTH = 16
HIDDEN = 8


def _transfer(**overrides):
  values = {'input': mask_rcnn_params.TRANSFER_CLS, 'hidden_dim': HIDDEN}
  values.update(overrides)
  return mask_rcnn_params.WeightTransferParams(**values)


def _model(transfer=None, allowed=(), num_stages=2, **overrides):
  values = {'dim': 8, 'pixel_embedding_dim': 4, 'mask_size': 16,
            'network_type': 'resnet4', 'num_init_channels': 8,
            'allowed_masked_classes_ids': tuple(allowed),
            'weight_transfer': transfer or _transfer()}
  values.update(overrides)
  tf.random.set_seed(3)
  model = deepmac.DeepMACMetaArch(
      is_training=True, num_classes=NUM_CLASSES,
      feature_extractor=TinyExtractor(num_stages),
      object_center_params=center_net_params.ObjectCenterParams(
          max_box_predictions=5, center_head_num_filters=(CENTER_WIDTH,)),
      object_detection_params=center_net_params.ObjectDetectionParams(
          scale_head_num_filters=(16,), offset_head_num_filters=(16,)),
      deepmac_params=deepmac.DeepMACParams(**values))
  predictions = _predict(model)
  model.postprocess(predictions)
  return model


def _predict(model):
  return model.predict(model.normalize_images(_images()), training=False)


def _center_convs(model):
  return [deepmac_weight_transfer.heatmap_output_conv(head) for head in
          model._prediction_head_dict[center_net.OBJECT_CENTER]]  # pylint: disable=protected-access


def _mask_loss(model, groundtruth=None, predictions=None):
  predictions = predictions or _predict(model)
  losses = model.loss(predictions, groundtruth or _groundtruth(),
                      training=False)
  return losses[deepmac.LOSS_DEEP_MASK_ESTIMATION]


def _prompted(model, classes, predictions=None):
  predictions = predictions or _predict(model)
  boxes = tf.constant([[[0.1, 0.1, 0.6, 0.7]] * len(classes)] * 2)
  masks = model.predict_masks_from_boxes(
      predictions, boxes, classes=tf.constant([list(classes)] * 2))
  return masks['detection_masks'].numpy()[0]


# -- config ---------------------------------------------------------------


def _read(text, **overrides):
  if 'network_type' not in text:
    text += ' network_type: "resnet4"'
  proto = text_format.Parse(
      'classification_loss { weighted_sigmoid {} } ' + text,
      center_net_pb2.CenterNet.DeepMACMaskEstimation())
  return deepmac_builder.deepmac_params_from_proto(proto, NUM_CLASSES,
                                                   **overrides)


def test_config_unset_input_is_the_heatmap_column():
  params = _read('weight_transfer { hidden_dim: 64 num_layers: 1 '
                 'stop_gradient: false }')
  assert params.weight_transfer == mask_rcnn_params.WeightTransferParams(
      input=mask_rcnn_params.TRANSFER_CLS, num_layers=1, hidden_dim=64,
      stop_gradient=False)
  assert _read('').weight_transfer is None
  assert _read('weight_transfer { input: RANDOM }').weight_transfer.input == (
      mask_rcnn_params.TRANSFER_RANDOM)


@pytest.mark.parametrize('text, overrides, field', [
    ('weight_transfer { input: CLS_AND_BOX }', {}, 'weight_transfer.input'),
    ('weight_transfer { input: BOX }', {}, 'weight_transfer.input'),
    ('weight_transfer { num_layers: 4 }', {}, 'weight_transfer.num_layers'),
    ('weight_transfer { } network_type: "fully_connected"', {},
     'weight_transfer'),
    ('weight_transfer { } network_type: "embedding_projection" '
     'use_instance_embedding: false use_xy: false dim: 16', {},
     'weight_transfer'),
    ('weight_transfer { } predict_full_resolution_masks: true', {},
     'weight_transfer'),
    ('weight_transfer { }', {'detector_free': True}, 'weight_transfer.input'),
])
def test_config_errors_name_the_field(text, overrides, field):
  with pytest.raises(ConfigError) as error:
    _read(text, **overrides)
  assert str(error.value).startswith(f'{FIELD}.{field}:')


# -- model ----------------------------------------------------------------


def test_head_has_no_projection_and_t_has_the_dimensions_parameters():
  model = _model()
  assert model._mask_net.project_out is None  # pylint: disable=protected-access
  assert model.class_specific_masks
  transfer = model._weight_transfer  # pylint: disable=protected-access
  features = model._mask_net.feature_channels(  # pylint: disable=protected-access
      deepmac_weight_transfer.mask_head_input_channels(model.deepmac_params))
  expected = transfer_lib.transfer_parameter_count(
      CENTER_WIDTH + 1, features, 2, HIDDEN)
  assert sum(int(np.prod(v.shape)) for v in transfer.trainable_variables) == (
      expected)


def _mask_loss_gradients(model, variables):
  with tf.GradientTape() as tape:
    loss = _mask_loss(model)
  gradients = tape.gradient(
      loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
  return [tf.convert_to_tensor(g) for g in gradients]


def test_stop_gradient_cuts_the_mask_loss_from_the_heatmap_weights():
  model = _model()
  convs = _center_convs(model)
  variables = [v for conv in convs for v in (conv.kernel, conv.bias)]
  stopped = _mask_loss_gradients(model, variables)
  assert all(not np.any(g.numpy()) for g in stopped)
  model._deepmac_params = dataclasses.replace(  # pylint: disable=protected-access
      model.deepmac_params, weight_transfer=_transfer(stop_gradient=False))
  flowing = _mask_loss_gradients(model, variables)
  # Every stage's head gets gradient from its own stage's masks.
  assert all(np.any(g.numpy()) for g in flowing)
  assert np.any(_mask_loss_gradients(
      model, model._weight_transfer.trainable_variables)[0].numpy())  # pylint: disable=protected-access


def _perturb_class(model, class_index):
  """Adds noise to one class's heatmap weights (kernel column + bias) at
  every stage."""
  for conv in _center_convs(model):
    kernel = conv.kernel.numpy()
    kernel[..., class_index] += np.random.default_rng(class_index).normal(
        0.0, 1.0, kernel[..., class_index].shape)
    conv.kernel.assign(kernel)
    bias = conv.bias.numpy()
    bias[class_index] += 1.0
    conv.bias.assign(bias)


def test_only_allowed_classes_contribute_to_the_mask_loss():
  # Groundtruth classes: [1, pad], [2, 3]; only class 2 may have masks.
  model = _model(allowed=(2,))
  predictions = _predict(model)
  before = float(_mask_loss(model, predictions=predictions))
  _perturb_class(model, 0)  # class 1: has a mask but is not allowed
  _perturb_class(model, 2)  # class 3: not allowed
  assert float(_mask_loss(model, predictions=_predict(model))) == (
      pytest.approx(before, abs=1e-6))
  _perturb_class(model, 1)  # class 2
  assert float(_mask_loss(model, predictions=_predict(model))) != (
      pytest.approx(before, abs=1e-4))


def test_a_class_mask_comes_from_its_own_heatmap_weights():
  model = _model()
  before = _prompted(model, [0, 1, 2])
  assert not np.allclose(before[0], before[1])
  _perturb_class(model, 2)
  after = _prompted(model, [0, 1, 2])
  np.testing.assert_allclose(after[:2], before[:2], atol=1e-6)
  assert not np.allclose(after[2], before[2], atol=1e-3)


def test_detection_masks_are_the_detected_class_channel():
  model = _model()
  predictions = _predict(model)
  detections = model.postprocess(predictions)
  classes = detections[center_net.DETECTION_CLASSES]
  prompted = model.predict_masks_from_boxes(
      predictions, detections[center_net.DETECTION_BOXES], classes=classes)
  np.testing.assert_allclose(detections[deepmac.DETECTION_MASKS],
                             prompted['detection_masks'], atol=1e-5)
  with pytest.raises(ValueError, match='weight_transfer'):
    model.predict_masks_from_boxes(predictions,
                                   detections[center_net.DETECTION_BOXES])


def test_random_input_uses_fixed_class_vectors():
  model = _model(_transfer(input=mask_rcnn_params.TRANSFER_RANDOM))
  table = model._random_class_embeddings  # pylint: disable=protected-access
  assert table.shape == (NUM_CLASSES, CENTER_WIDTH + 1)
  assert not table.trainable
  before = _prompted(model, [0, 1])
  _perturb_class(model, 1)
  np.testing.assert_allclose(_prompted(model, [0, 1]), before, atol=1e-6)


# -- export ---------------------------------------------------------------

TINY = '''
model { center_net {
  feature_extractor { type: "hourglass_10" }
  image_resizer { keep_aspect_ratio_resizer {
    min_dimension: 64 max_dimension: 64 pad_to_max_dimension: true } }
  object_center_params { max_box_predictions: 4 }
  deepmac_mask_estimation { dim: 8 pixel_embedding_dim: 8 mask_size: 16
    network_type: "resnet4" num_init_channels: 8
    weight_transfer { hidden_dim: 16 } }
} }
'''


def test_exported_masks_match_the_checkpoint(tmp_path):
  exported = pipeline_fixtures.export_initial_weights(tmp_path, TINY, CONFIG)
  reference, resizer = exported['model'], exported['resizer']
  loaded = tf.saved_model.load(exported['saved_model'])
  image = np.random.default_rng(0).integers(0, 255, [1, 64, 64, 3],
                                            dtype=np.uint8)
  served = loaded.signatures['serving_default'](
      input_tensor=tf.constant(image))
  resized, _, true_shape = resizer(tf.constant(image[0], tf.float32))
  predictions = reference.predict(reference.normalize_images(resized[None]),
                                  training=False)
  detections = reference.postprocess(predictions, true_shape[None])
  np.testing.assert_allclose(served['detection_masks'],
                             detections[deepmac.DETECTION_MASKS], atol=1e-4)
  boxes = np.array([[[0.1, 0.1, 0.6, 0.7], [0.2, 0.3, 1.0, 1.0]]],
                   np.float32)
  prompted = loaded.signatures['image_and_boxes_tensor'](
      input_tensor=tf.constant(image), boxes=tf.constant(boxes),
      classes=tf.constant([[2, 9]], tf.int32))
  expected = reference.predict_masks_from_boxes(
      predictions, tf.constant(boxes), true_shape[None],
      classes=tf.constant([[1, 8]]))['detection_masks']
  np.testing.assert_allclose(prompted['detection_masks'], expected,
                             atol=1e-4)
  assert not np.allclose(expected[0, 0], expected[0, 1], atol=1e-3)
