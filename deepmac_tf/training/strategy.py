"""Chooses the ``tf.distribute`` strategy from the driver flags.

* ``use_tpu`` -> ``TPUStrategy`` on ``tpu_name`` (a TPU address or name;
  Cloud TPUs read data and write checkpoints only through ``gs://`` paths).
* ``num_workers > 1`` -> ``MultiWorkerMirroredStrategy``; the cluster comes
  from the ``TF_CONFIG`` environment variable, which must be set.
* otherwise ``MirroredStrategy`` over the visible GPUs (or, with no GPU, the
  logical CPU devices) when there are several, else ``OneDeviceStrategy``.
"""

import json
import os

from absl import logging
import tensorflow as tf

from deepmac_tf.errors import ConfigError


def visible_devices():
  """Names of the devices a local strategy should use: GPUs, else CPUs."""
  gpus = tf.config.list_logical_devices('GPU')
  if gpus:
    return [device.name for device in gpus]
  return [device.name for device in tf.config.list_logical_devices('CPU')]


def _tpu_strategy(tpu_name):
  if not tpu_name:
    raise ConfigError('--tpu_name: must be set with --use_tpu (the TPU name '
                      'or grpc:// address).')
  resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_name)
  tf.config.experimental_connect_to_cluster(resolver)
  tf.tpu.experimental.initialize_tpu_system(resolver)
  return tf.distribute.TPUStrategy(resolver)


def _multi_worker_strategy(num_workers):
  tf_config = os.environ.get('TF_CONFIG')
  if not tf_config:
    raise ConfigError(f'--num_workers={num_workers}: multi-worker training '
                      'reads the cluster from the TF_CONFIG environment '
                      'variable, which is not set.')
  try:
    cluster = json.loads(tf_config).get('cluster', {})
  except ValueError as e:
    raise ConfigError(f'TF_CONFIG: not valid JSON ({e}).') from None
  workers = len(cluster.get('worker', [])) + len(cluster.get('chief', []))
  if workers != num_workers:
    logging.warning('--num_workers=%d but TF_CONFIG lists %d workers; the '
                    'cluster in TF_CONFIG is used.', num_workers, workers)
  return tf.distribute.MultiWorkerMirroredStrategy()


def select_strategy(use_tpu=False, tpu_name=None, num_workers=1,
                    devices=None):
  """Returns the strategy for these flags (see module doc).

  Args:
    use_tpu: train on a TPU.
    tpu_name: the TPU to connect to (required with use_tpu).
    num_workers: > 1 for multi-worker mirrored training.
    devices: local device names to mirror over; default ``visible_devices``.

  Raises:
    ConfigError: inconsistent flags or a missing TF_CONFIG.
  """
  if num_workers < 1:
    raise ConfigError(f'--num_workers: must be >= 1, got {num_workers}.')
  if use_tpu:
    if num_workers > 1:
      raise ConfigError('--use_tpu and --num_workers > 1 cannot be combined '
                        '(a TPU pod is one TPUStrategy).')
    strategy = _tpu_strategy(tpu_name)
  elif num_workers > 1:
    strategy = _multi_worker_strategy(num_workers)
  else:
    if tpu_name:
      logging.warning('--tpu_name is ignored without --use_tpu.')
    devices = list(devices or visible_devices())
    if len(devices) > 1:
      strategy = tf.distribute.MirroredStrategy(devices)
    else:
      strategy = tf.distribute.OneDeviceStrategy(devices[0])
  # Worth a line only when it is not the plain one-device case (the train
  # loop's first line gives the replica count; a failing pre-training check
  # should be the only line of its run).
  logging.log(logging.DEBUG if isinstance(
      strategy, tf.distribute.OneDeviceStrategy) else logging.INFO,
              'Distribution: %s with %d replica(s).',
              type(strategy).__name__, strategy.num_replicas_in_sync)
  return strategy


def is_multi_worker(strategy):
  """True for a MultiWorkerMirroredStrategy over more than one worker."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and
          resolver is not None and
          sum(len(tasks) for tasks in
              resolver.cluster_spec().as_dict().values()) > 1)


def is_chief(strategy):
  """True on the worker that owns model_dir (always, without a cluster)."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  if resolver is None or not isinstance(
      strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return True
  task_type, task_id = resolver.task_type, resolver.task_id
  return task_type in (None, 'chief') or (task_type == 'worker' and
                                          task_id == 0 and
                                          'chief' not in
                                          resolver.cluster_spec().as_dict())


def writable_dir(strategy, model_dir):
  """model_dir on the chief; a per-worker scratch folder elsewhere.

  Every multi-worker replica must take part in a checkpoint save, but only
  the chief's files are kept (the TF multi-worker convention).
  """
  if is_chief(strategy):
    return model_dir
  resolver = strategy.cluster_resolver
  return os.path.join(model_dir, f'workertemp_{resolver.task_id}')
