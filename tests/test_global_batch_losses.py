"""Losses are normalized over the global batch under tf.distribute: two
replicas whose images hold different numbers of boxes and mask-supervised
instances (one replica may hold none) give every loss term of one device on
the same global batch. Once with MirroredStrategy over 2 logical CPU devices
(a fresh subprocess: logical devices must be set before TF initializes),
once with MultiWorkerMirroredStrategy over two worker processes on
127.0.0.1 (TF_CONFIG)."""

import json
import os
import subprocess
import sys
import textwrap

import pipeline_fixtures
from deepmac_tf.training import script_runs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = textwrap.dedent('''
    import json, os, sys
    import tensorflow as tf
    if 'TF_CONFIG' in os.environ:
      # Collectives must be set up before any op runs: first thing.
      strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
      cpu = tf.config.list_physical_devices('CPU')[0]
      tf.config.set_logical_device_configuration(
          cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
      strategy = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
    import tf_keras
    from deepmac_tf import config as config_lib
    from deepmac_tf.builders import dataset_builder, model_builder
    from deepmac_tf.builders import model_variables
    from deepmac_tf.data.fields import InputFields
    from deepmac_tf.training import train_step

    configs = config_lib.get_configs_from_pipeline_file(sys.argv[1])
    del configs['train_config'].data_augmentation_options[:]
    configs['train_input_config'].shuffle = False
    configs['train_config'].batch_size = 1
    images = list(dataset_builder.build_from_pipeline(configs, 'train').take(8))

    def counts(example):
      return (int(tf.math.count_nonzero(example[InputFields.CLASSES])),
              float(tf.reduce_sum(example[InputFields.MASK_WEIGHTS])))

    keys = [counts(example) for example in images]
    # The most different pair: mask-supervised counts first, then boxes.
    pair = max(((i, j) for i in range(8) for j in range(i + 1, 8)),
               key=lambda p: (abs(keys[p[0]][1] - keys[p[1]][1]),
                              abs(keys[p[0]][0] - keys[p[1]][0])))
    batch = {k: tf.concat([images[pair[0]][k], images[pair[1]][k]], 0)
             for k in images[0]}

    def build(sync):
      model = model_builder.build(configs['model'], is_training=True,
                                  use_sync_batch_norm=sync)
      model_variables.build_model_variables(model, 64, 64)
      return model

    tf_keras.utils.set_random_seed(3)
    reference = build(False)
    expected = {k: float(v) for k, v in
                train_step.compute_losses(reference, batch).items()}
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
      model = build(True)
      model.set_weights(reference.get_weights())
    distributed = strategy.experimental_distribute_values_from_function(
        lambda ctx: {k: v[ctx.replica_id_in_sync_group:
                          ctx.replica_id_in_sync_group + 1]
                     for k, v in batch.items()})

    @tf.function
    def losses(b):
      return strategy.run(lambda x: train_step.compute_losses(model, x),
                          args=(b,))

    per_replica = losses(distributed)
    mirrored = {k: float(strategy.reduce(tf.distribute.ReduceOp.MEAN, v,
                                         axis=None))
                for k, v in per_replica.items()}
    print('RESULTS ' + json.dumps({'counts': [keys[pair[0]], keys[pair[1]]],
                                   'one_device': expected,
                                   'two_replicas': mirrored}))
''')


# A mask head without batch norm: the instance slots a replica pads to its
# own maximum would otherwise enter the head's batch statistics, which then
# depend on how instances split over replicas (a property of batch norm on
# padded slots, not of the normalizers tested here).
_NO_BATCH_NORM_HEAD = ('model { center_net { deepmac_mask_estimation { '
                       'network_type: "fully_connected" } } }')


def _check(results):
  (boxes_a, masks_a), (boxes_b, masks_b) = results['counts']
  assert masks_a != masks_b  # unequal replicas: the case that broke
  one, two = results['one_device'], results['two_replicas']
  assert one.keys() == two.keys()
  for name, value in one.items():
    assert abs(two[name] - value) <= 1e-4 * max(1.0, abs(value)), (
        name, value, two[name], results['counts'])


def _results(stdout, stderr):
  lines = [l for l in stdout.splitlines() if l.startswith('RESULTS ')]
  assert lines, stderr[-3000:]
  return json.loads(lines[-1][len('RESULTS '):])


def test_two_replicas_give_the_one_device_loss_terms(tmp_path):
  pipeline = pipeline_fixtures.tiny_pipeline(
      tmp_path, config_override=_NO_BATCH_NORM_HEAD)
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
  env.pop('TF_CONFIG', None)
  result = subprocess.run([sys.executable, '-c', _SCRIPT, pipeline],
                          capture_output=True, text=True, timeout=600,
                          env=env, cwd=REPO)
  _check(_results(result.stdout, result.stderr))


def test_two_worker_processes_give_the_one_device_loss_terms(tmp_path):
  """MultiWorkerMirroredStrategy: two processes on 127.0.0.1 (TF_CONFIG),
  one replica each, every loss term equal to one device's."""
  pipeline = pipeline_fixtures.tiny_pipeline(
      tmp_path, config_override=_NO_BATCH_NORM_HEAD)
  workers = [f'127.0.0.1:{port}' for port in script_runs.free_ports(2)]
  processes = []
  for index in range(2):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2',
               TF_CONFIG=script_runs.tf_config(workers, index))
    processes.append(subprocess.Popen(
        [sys.executable, '-c', _SCRIPT, pipeline], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=env, cwd=REPO))
  outputs = []
  try:
    for process in processes:
      outputs.append(process.communicate(timeout=900))
  finally:
    for process in processes:
      if process.poll() is None:
        process.kill()
  for stdout, stderr in outputs:
    _check(_results(stdout, stderr))
