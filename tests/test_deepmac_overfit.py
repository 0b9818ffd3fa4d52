"""Deep-MAC overfits a handful of synthetic images (issue 3, "done means").

The real pipeline end to end, minus the driver: the tiny synthetic config ->
input pipeline -> model -> losses -> Adam, on one fixed batch of 4 images,
then masks predicted at the groundtruth boxes are pasted into the image and
compared with the groundtruth masks. Every class may train masks here (the
question is capacity and plumbing, not generalization).
"""

import os
import sys

import numpy as np
import tensorflow as tf
import tf_keras

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pipeline_fixtures  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf import config as config_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.builders import dataset_builder  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.builders import model_builder  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.data.fields import InputFields as F  # pylint: disable=g-import-not-at-top,wrong-import-position
from deepmac_tf.ops import mask_pasting  # pylint: disable=g-import-not-at-top,wrong-import-position

# Every class supervises masks; no augmentation so the batch is fixed.
_OVERRIDE = """
model { center_net { deepmac_mask_estimation {
  mask_size: 32 num_init_channels: 16 network_type: "resnet4"
} } }
train_config { batch_size: 4 }
"""


def _fixed_batch(tmp_path):
  path = pipeline_fixtures.tiny_pipeline(tmp_path, _OVERRIDE, num_train=4,
                                         num_val=1, seed=3)
  configs = config_lib.get_configs_from_pipeline_file(path)
  configs['model'].center_net.deepmac_mask_estimation.ClearField(
      'allowed_masked_classes_ids')
  configs['train_config'].ClearField('data_augmentation_options')
  dataset = dataset_builder.build_from_pipeline(configs, 'train')
  return configs, next(iter(dataset))


def _mask_ious(model, batch):
  """IoU of each real instance's predicted (>0.5) and groundtruth mask."""
  predictions = model.predict(model.normalize_images(batch[F.IMAGE]),
                              training=False)
  true_shapes = batch[F.TRUE_IMAGE_SHAPE]
  # Groundtruth boxes are normalized to the padded input; here the resizer
  # does not pad (square images), so padded == true.
  box_masks = model.predict_masks_from_boxes(
      predictions, batch[F.BOXES], true_shapes)['detection_masks']
  height, width = batch[F.IMAGE].shape[1:3]
  pasted = mask_pasting.paste_box_masks(box_masks, batch[F.BOXES], height,
                                        width).numpy() > 0.5
  truth = batch[F.INSTANCE_MASKS].numpy() > 0.5
  real = batch[F.WEIGHTS].numpy() > 0
  ious = []
  for b, n in zip(*np.nonzero(real)):
    union = np.logical_or(pasted[b, n], truth[b, n]).sum()
    ious.append(np.logical_and(pasted[b, n], truth[b, n]).sum() / union)
  return np.array(ious)


def test_overfits_a_handful_of_synthetic_images(tmp_path):
  tf.random.set_seed(0)
  configs, batch = _fixed_batch(tmp_path)
  assert int((batch[F.WEIGHTS].numpy() > 0).sum()) >= 4
  model = model_builder.build(configs['model'], is_training=True)
  optimizer = tf_keras.optimizers.Adam(3e-3)

  @tf.function
  def train_step():
    with tf.GradientTape() as tape:
      predictions = model.predict(model.normalize_images(batch[F.IMAGE]),
                                  training=True)
      losses = model.loss(predictions, batch, training=True)
      total = tf.add_n(list(losses.values()))
    variables = model.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
    return losses['Loss/deep_mask_estimation']

  first = float(train_step())
  # 200 steps, measured 2026-12-03: loss ratio 10.5, mean IoU 0.954 (min
  # 0.936). 100 steps was too close to the IoU bar: CPU thread order makes
  # runs differ, and 100-step runs measured 0.79 (CI), 0.81 and 0.88.
  # (150 steps: 0.93; 300: 0.97.)
  for _ in range(199):
    last = float(train_step())
  assert last < first / 5.0, (first, last)
  ious = _mask_ious(model, batch)
  print("mask IoU per instance:", np.round(ious, 3))
  assert ious.mean() > 0.8, ious
