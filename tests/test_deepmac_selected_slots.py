"""Deep-MAC runs its mask head only where a mask is needed (issue 9).

Training: the instances a loss weighs (mask weight > 0; box weight > 0 with
the box-consistency loss). Inference: detections scoring >=
``mask_detection_score_threshold``. Losses, gradients and the computed masks
equal the all-slots computation (``mask_head_slots: ALL_SLOTS``).
"""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format

import test_deepmac as base
from deepmac_tf.data.fields import InputFields
from deepmac_tf.errors import ConfigError
from deepmac_tf.builders import deepmac_builder
from deepmac_tf.meta_architectures import deepmac
from deepmac_tf.protos import center_net_pb2


class _RowCounter:
  """Wraps a model's mask head; records how many rows each call gets."""

  def __init__(self, model):
    self.rows = []
    self._net = model._mask_net
    model._mask_net = self

  def __call__(self, instance_embedding, pixel_input, training=None):
    self.rows.append(int(pixel_input.shape[0]))
    return self._net(instance_embedding, pixel_input, training=training)


def _use_slots(model, slots):
  model._deepmac_params = dataclasses.replace(model._deepmac_params,
                                              mask_head_slots=slots)


def _groundtruth_with_padding():
  """2 images x 4 slots: real instances with mask weight 1 and 0, padding."""
  gt = base._groundtruth()
  pad = lambda t, value: tf.concat(  # pylint: disable=g-long-lambda
      [t, tf.fill(tf.concat([tf.shape(t)[:1], [2], tf.shape(t)[2:]], 0),
                  tf.cast(value, t.dtype))], axis=1)
  for key in (InputFields.BOXES, InputFields.CLASSES, InputFields.WEIGHTS,
              InputFields.INSTANCE_MASKS):
    gt[key] = pad(gt[key], 0)
  # Image 0: instance 0 has a mask weight, slot 1 is padding; image 1: two
  # instances, the second without mask weight; slots 2-3 are padding.
  gt[InputFields.MASK_WEIGHTS] = tf.constant([[1.0, 0.0, 0.0, 0.0],
                                              [1.0, 0.0, 0.0, 0.0]])
  return gt


def _loss_and_grads(model, images, gt, training):
  with tf.GradientTape() as tape:
    predictions = model.predict(images, training=training)
    losses = model.loss(predictions, gt, training=training)
    total = tf.add_n(list(losses.values()))
  grads = tape.gradient(total, model.trainable_variables)
  return ({k: v.numpy() for k, v in losses.items()},
          [None if g is None else tf.convert_to_tensor(g).numpy()
           for g in grads])


@pytest.mark.parametrize('network_type,training,box_loss', [
    ('fully_connected', True, 0.0),  # no batch norm: training mode equal
    ('fully_connected', True, 1.0),
    ('resnet4', False, 1.0),         # batch norm with its moving statistics
])
def test_losses_and_gradients_equal_the_all_slots_computation(
    network_type, training, box_loss):
  model = base._model(network_type=network_type,
                      box_consistency_loss_weight=box_loss,
                      ignore_per_class_box_overlap=True)
  images = model.normalize_images(base._images())
  gt = _groundtruth_with_padding()
  counter = _RowCounter(model)
  _use_slots(model, 'all_slots')
  want_losses, want_grads = _loss_and_grads(model, images, gt, training)
  assert counter.rows == [8, 8]  # 2 stages x all 2 x 4 slots
  _use_slots(model, 'selected_slots')
  counter.rows.clear()
  got_losses, got_grads = _loss_and_grads(model, images, gt, training)
  # Mask loss: the 2 instances with a mask weight; box loss: the 3 real ones.
  assert counter.rows == ([3, 3] if box_loss else [2, 2])
  assert set(got_losses) == set(want_losses)
  for key, value in want_losses.items():
    np.testing.assert_allclose(got_losses[key], value, rtol=1e-5, atol=1e-6)
  for got, want in zip(got_grads, want_grads):
    assert (got is None) == (want is None)
    if got is not None:
      np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_no_instance_needs_a_mask_runs_no_head():
  model = base._model()  # resnet4: batch norm
  gt = _groundtruth_with_padding()
  predictions = base._predict(model)
  model.loss(predictions, gt, training=True)  # builds the head
  net = model._mask_net
  statistics = [v.numpy() for v in net.non_trainable_variables]
  assert statistics
  counter = _RowCounter(model)
  gt[InputFields.MASK_WEIGHTS] = tf.zeros([2, 4])
  loss = model.loss(predictions, gt, training=True)
  assert loss['Loss/deep_mask_estimation'].numpy() == 0.0
  assert counter.rows == [0, 0]
  for before, variable in zip(statistics, net.non_trainable_variables):
    np.testing.assert_array_equal(before, variable.numpy())


def test_masks_only_for_detections_passing_the_score_threshold():
  model = base._model()
  predictions = base._predict(model, training=False)
  everything = model.postprocess(predictions)
  scores = everything['detection_scores'].numpy()
  threshold = float(np.median(scores))
  passing = scores >= threshold
  assert 0 < passing.sum() < passing.size
  counter = _RowCounter(model)
  for slots in ('selected_slots', 'all_slots'):
    model._deepmac_params = dataclasses.replace(
        model._deepmac_params, mask_detection_score_threshold=threshold,
        mask_head_slots=slots)
    counter.rows.clear()
    detections = model.postprocess(predictions)
    assert counter.rows == [int(passing.sum()) if slots == 'selected_slots'
                            else passing.size]
    masks = detections['detection_masks'].numpy()
    assert masks.shape == everything['detection_masks'].shape == (2, 5, 16,
                                                                  16)
    np.testing.assert_allclose(masks[passing],
                               everything['detection_masks'].numpy()[passing],
                               rtol=1e-5, atol=1e-6)
    assert not np.any(masks[~passing])
    for key in ('detection_boxes', 'detection_scores', 'detection_classes'):
      np.testing.assert_array_equal(detections[key].numpy(),
                                    everything[key].numpy())


def test_fields_read_from_the_config():
  proto = text_format.Parse(
      'mask_detection_score_threshold: 0.3 mask_head_slots: ALL_SLOTS '
      'classification_loss { weighted_sigmoid {} }',
      center_net_pb2.CenterNet.DeepMACMaskEstimation())
  params = deepmac_builder.deepmac_params_from_proto(proto)
  assert params.mask_detection_score_threshold == pytest.approx(0.3)
  assert params.mask_head_on_all_slots is True
  default = deepmac_builder.deepmac_params_from_proto(
      center_net_pb2.CenterNet.DeepMACMaskEstimation(
          classification_loss={'weighted_sigmoid': {}}))
  assert default.mask_detection_score_threshold == 0.0
  assert default.mask_head_on_all_slots is None  # all slots on TPU only
  with pytest.raises(ConfigError, match='mask_detection_score_threshold'):
    deepmac_builder.validate_deepmac_params(
        base._params(mask_detection_score_threshold=1.5))
