"""MirroredStrategy over 2 logical CPU devices with sync batch norm gives the
one-device loss on the same global batch, and the train loop runs under it.

Logical devices must be configured before TensorFlow initializes its
devices, so the check runs in a fresh subprocess (the script below).
"""

import json
import os
import subprocess
import sys
import textwrap

import pipeline_fixtures

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = textwrap.dedent('''
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import tf_keras
    from deepmac_tf import config as config_lib
    from deepmac_tf.builders import dataset_builder, model_builder
    from deepmac_tf.data.fields import InputFields
    from deepmac_tf.builders import model_variables
    from deepmac_tf.training import strategy as strategy_lib
    from deepmac_tf.training import train_loop, train_step

    pipeline_path, model_dir = sys.argv[1], sys.argv[2]
    configs = config_lib.get_configs_from_pipeline_file(pipeline_path)
    del configs['train_config'].data_augmentation_options[:]
    configs['train_input_config'].shuffle = False
    # Two images with equal box and mask-weight counts: then the loss of the
    # global batch on one device (normalized by the batch's counts) equals
    # the mean of the replicas' losses (each normalized by its own).
    configs['train_config'].batch_size = 1
    images = list(dataset_builder.build_from_pipeline(configs, 'train').take(8))
    configs['train_config'].batch_size = 2

    def counts(example):
      return (int(tf.math.count_nonzero(example[InputFields.CLASSES])),
              float(tf.reduce_sum(
                  example[InputFields.MASK_WEIGHTS])))

    keys = [counts(example) for example in images]
    pair = next((i, j) for i in range(8) for j in range(i + 1, 8)
                if keys[i] == keys[j] and keys[i][1] > 0)
    batch = {k: tf.concat([images[pair[0]][k], images[pair[1]][k]], 0)
             for k in images[0]}
    total = train_step.TOTAL_LOSS

    def build(sync):
      model = model_builder.build(configs['model'], is_training=True,
                                  use_sync_batch_norm=sync)
      model_variables.build_model_variables(model, 64, 64)
      return model

    def slice_batch(i):
      return {k: v[i:i + 1] for k, v in batch.items()}

    tf_keras.utils.set_random_seed(3)
    reference = build(False)
    expected = float(train_step.compute_losses(reference, batch)[total])

    strategy = strategy_lib.select_strategy()
    results = {'strategy': type(strategy).__name__,
               'replicas': strategy.num_replicas_in_sync,
               'one_device_loss': expected}
    for sync in (True, False):
      with strategy.scope():
        model = build(sync)
        model.set_weights(reference.get_weights())
      distributed = strategy.experimental_distribute_values_from_function(
          lambda ctx: slice_batch(ctx.replica_id_in_sync_group))
      per_replica = strategy.run(
          lambda b: train_step.compute_losses(model, b)[total],
          args=(distributed,))
      results[f'mirrored_loss_sync_{sync}'] = float(strategy.reduce(
          tf.distribute.ReduceOp.MEAN, per_replica, axis=None))

    result = train_loop.train_loop(configs, model_dir, num_train_steps=2,
                                   strategy=strategy, record_summaries=False)
    results['train_loop_step'] = result.step
    results['train_loop_loss'] = result.losses[total]
    print('RESULTS ' + json.dumps(results))
''')


def test_mirrored_sync_bn_matches_one_device(tmp_path):
  pipeline = pipeline_fixtures.tiny_pipeline(tmp_path)
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2',
             CUDA_VISIBLE_DEVICES='')
  completed = subprocess.run(
      [sys.executable, '-c', _SCRIPT, pipeline, str(tmp_path / 'model')],
      capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
  assert completed.returncode == 0, completed.stderr[-4000:]
  line = [l for l in completed.stdout.splitlines()
          if l.startswith('RESULTS ')][-1]
  results = json.loads(line[len('RESULTS '):])
  assert results['strategy'] == 'MirroredStrategy'
  assert results['replicas'] == 2
  expected = results['one_device_loss']
  assert abs(results['mirrored_loss_sync_True'] - expected) <= 1e-4 * max(
      1.0, abs(expected))
  # Without sync BN each replica normalizes its own image: a different loss
  # (so the check above really tests the synchronization).
  assert abs(results['mirrored_loss_sync_False'] - expected) > 1e-3
  assert results['train_loop_step'] == 2
  assert results['train_loop_loss'] == results['train_loop_loss']  # not NaN
  assert os.path.exists(tmp_path / 'model' / 'ckpt-2.index')
