"""mask_heads.selected_slots: the head runs only on the selected slots."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from deepmac_tf.mask_heads import selected_slots
from deepmac_tf.mask_heads import upsampling_mask_head

_SELECTED = np.array([[True, False, True, False, False],
                      [False, False, False, False, True]])


class _CountingHead(tf_keras.layers.Layer):
  """conv + bias: [n, 8, 8, 3] and [n] -> ([n, 8, 8], [n, 2]); counts rows."""

  def __init__(self):
    super().__init__()
    self.conv = tf_keras.layers.Conv2D(2, 3, padding='same')
    self.rows_seen = []

  def call(self, crops, scale):
    self.rows_seen.append(crops.shape[0])
    out = self.conv(crops) * scale[:, None, None, None]
    return {'mask': out[..., 0], 'pooled': tf.reduce_mean(out, [1, 2])}


def _inputs(seed=0):
  rng = np.random.default_rng(seed)
  crops = tf.constant(rng.normal(size=(2, 5, 8, 8, 3)), tf.float32)
  scale = tf.constant(rng.uniform(0.5, 2.0, size=(2, 5)), tf.float32)
  return crops, scale


def _reference(head, crops, scale, selected):
  """The head on every slot, unselected slots zeroed (numpy)."""
  out = head(tf.reshape(crops, [10, 8, 8, 3]), tf.reshape(scale, [10]))
  keep = selected.reshape(10)
  return {k: np.where(keep.reshape((10,) + (1,) * (v.shape.rank - 1)),
                      v.numpy(), 0.0).reshape((2, 5) + tuple(v.shape[1:]))
          for k, v in out.items()}


@pytest.mark.parametrize('all_slots', [False, True])
def test_values_and_gradients_match_all_slots(all_slots):
  head = _CountingHead()
  crops, scale = _inputs()
  expected = _reference(head, crops, scale, _SELECTED)
  with tf.GradientTape() as tape:
    tape.watch(crops)
    out = selected_slots.apply_to_selected_slots(
        head, _SELECTED, (crops, scale), all_slots=all_slots)
    loss = tf.reduce_sum(out['mask'] ** 2) + tf.reduce_sum(out['pooled'])
  grads = tape.gradient(loss, [crops] + head.trainable_variables)
  for key in expected:
    assert out[key].shape == expected[key].shape
    np.testing.assert_allclose(out[key].numpy(), expected[key], atol=1e-5)
  assert head.rows_seen[-1] == (10 if all_slots else 3)
  # No gradient reaches the inputs of unselected slots.
  crop_grads = grads[0].numpy()
  assert np.all(crop_grads[~_SELECTED] == 0)
  assert np.all(np.any(crop_grads[_SELECTED] != 0, axis=(1, 2, 3)))

  with tf.GradientTape() as tape:
    reference = head(tf.reshape(crops, [10, 8, 8, 3]), tf.reshape(scale, [10]))
    keep = tf.reshape(tf.constant(_SELECTED), [10])
    loss = (tf.reduce_sum(tf.where(keep[:, None, None], reference['mask'],
                                   0.0) ** 2) +
            tf.reduce_sum(tf.where(keep[:, None], reference['pooled'], 0.0)))
  expected_grads = tape.gradient(loss, head.trainable_variables)
  for got, want in zip(grads[1:], expected_grads):
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4,
                               atol=1e-5)


def test_xla_gather_matches_all_slots():
  head = _CountingHead()
  crops, scale = _inputs(1)

  @tf.function(jit_compile=True)
  def run(selected, all_slots):
    return selected_slots.apply_to_selected_slots(
        head, selected, (crops, scale), all_slots=all_slots)

  gathered = run(tf.constant(_SELECTED), False)
  assert gathered['mask'].shape == (2, 5, 8, 8)  # static shape kept
  everything = run(tf.constant(_SELECTED), True)
  np.testing.assert_allclose(gathered['mask'].numpy(),
                             everything['mask'].numpy(), atol=1e-5)
  empty = run(tf.zeros([2, 5], tf.bool), False)
  assert empty['mask'].shape == (2, 5, 8, 8)
  assert not np.any(empty['mask'].numpy())


def test_empty_selection_in_training_leaves_batch_norm_alone():
  head = upsampling_mask_head.UpsamplingMaskHead(
      'mask_rcnn_fcn', num_init_channels=4, crop_size=4, upsample_factor=2)
  crops = tf.random.stateless_normal([2, 3, 4, 4, 5], seed=[1, 2])

  @tf.function
  def train(selected):
    return selected_slots.apply_to_selected_slots(
        lambda rows: head(rows, training=True)[..., 0], selected, crops)

  train(tf.ones([2, 3], tf.bool))  # builds the head, moves the statistics
  stats = [v.numpy().copy() for v in head.non_trainable_variables]
  out = train(tf.zeros([2, 3], tf.bool))
  assert out.shape == (2, 3, 8, 8) and not np.any(out.numpy())
  for before, variable in zip(stats, head.non_trainable_variables):
    np.testing.assert_array_equal(before, variable.numpy())
  train(tf.constant([[True, False, False], [False, False, False]]))
  assert any(not np.array_equal(before, v.numpy())
             for before, v in zip(stats, head.non_trainable_variables))


def test_static_shapes_only_with_a_tpu_unless_a_scope_says():
  on_tpu = bool(tf.config.list_logical_devices('TPU'))
  assert selected_slots.static_shapes_by_default() == on_tpu
  head = _CountingHead()
  crops, scale = _inputs()
  with selected_slots.default_static_shapes(not on_tpu):
    assert selected_slots.static_shapes_by_default() == (not on_tpu)
    selected_slots.apply_to_selected_slots(head, _SELECTED, (crops, scale))
  assert head.rows_seen[-1] == (3 if on_tpu else 10)
  assert selected_slots.static_shapes_by_default() == on_tpu
