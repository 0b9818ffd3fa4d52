"""Smoke test: the synthetic Deep-MARC config trains through the input
pipeline (a few steps on one batch reduce the loss)."""

import os

import numpy as np
import tensorflow as tf
import tf_keras

from deepmac_tf import config as config_lib
from deepmac_tf.builders import dataset_builder
from deepmac_tf.builders import model_builder
from deepmac_tf.config import validation
from deepmac_tf.data.fields import InputFields
from tests import pipeline_fixtures

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, 'configs', 'deepmarc_synthetic_cpu.config')
# 64 px and narrow FPN / heads / mask head (the synthetic config's structure
# at a fraction of its cost: a smoke test of training, not of capacity).
_OVERRIDE = '''
model { faster_rcnn {
  image_resizer { keep_aspect_ratio_resizer {
    min_dimension: 64 max_dimension: 64 pad_to_max_dimension: true } }
  feature_extractor { fpn { additional_layer_depth: 32 } }
  first_stage_box_predictor_depth: 32
  box_head_num_filters: 32 box_head_fc_dims: 64
  deepmarc_mask_head { network_type: "mask_rcnn_fcn" num_init_channels: 16 }
} }
train_config { batch_size: 4 }
'''


def _configs(tmp_path):
  data_dir = pipeline_fixtures.tiny_dataset(tmp_path)
  with open(CONFIG, encoding='utf-8') as f:
    text = f.read().replace(validation.PLACEHOLDER, data_dir)
  pipeline = config_lib.get_pipeline_config_from_text(
      text, source=CONFIG, config_override=_OVERRIDE)
  path = config_lib.save_pipeline_config(pipeline, str(tmp_path / 'cfg'))
  return config_lib.get_configs_from_pipeline_file(path)


def test_a_few_steps_on_one_batch_reduce_the_loss(tmp_path):
  configs = _configs(tmp_path)
  batch = next(iter(dataset_builder.build_from_pipeline(configs, 'train')))
  # Partial supervision arrives as data: unseen classes (6-10) weigh 0.
  classes = batch[InputFields.CLASSES].numpy()
  weights = batch[InputFields.MASK_WEIGHTS].numpy()
  assert (weights[classes > 5] == 0).all()
  tf.random.set_seed(0)
  model = model_builder.build(configs['model'], is_training=True)
  optimizer = tf_keras.optimizers.Adam(1e-3)

  @tf.function
  def step(batch):
    with tf.GradientTape() as tape:
      predictions = model.predict(model.normalize_images(batch[InputFields.IMAGE]),
                                  training=True)
      losses = model.loss(predictions, batch, training=True)
      total = tf.add_n(list(losses.values()))
    variables = model.trainable_variables
    optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
    return total, losses['Loss/BoxClassifierLoss/mask_loss']

  totals, mask = zip(*[(float(t), float(m)) for t, m in
                       (step(batch) for _ in range(12))])
  assert np.isfinite(totals).all()
  assert np.mean(totals[-3:]) < np.mean(totals[:3])
  assert np.mean(mask[-3:]) < np.mean(mask[:3])
