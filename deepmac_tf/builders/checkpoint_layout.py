"""Checkpoint layouts of the OD API's Deep-MAC releases, read from the files.

Two OD API releases write Deep-MAC checkpoints that differ in one place: the
first (256-filter) conv of the ``INSTANCE_EMBEDDING`` / ``PIXEL_EMBEDDING``
heads. The 2021 release builds it 3x3; later code (its ``make_prediction_net``
with ``unit_height_conv`` on by default) builds it 1x3. The kernel shape is a
model setting, ``deepmac_mask_estimation.embedding_head_kernel`` (ours, field
1001): ``KERNEL_3X3``, ``KERNEL_1X3`` or ``AUTO``. ``AUTO`` (the default)
takes the shape of the checkpoint the run starts from (fine-tune checkpoint,
resumed run, evaluated or exported checkpoint) and 3x3 for fresh training.

Later OD API checkpoints also hold objects that this library does not build
(the augmented self-supervision RNG ``_self_supervised_rng/_state_var``). They
carry no weights of the model, so restoring skips them by name and logs it.
"""

from absl import logging
import tensorflow as tf

from deepmac_tf.errors import ConfigError
from deepmac_tf.protos import center_net_pb2

FIELD = 'model.center_net.deepmac_mask_estimation.embedding_head_kernel'
EMBEDDING_HEADS = ('INSTANCE_EMBEDDING', 'PIXEL_EMBEDDING')
# Objects of OD API models that hold no model weights here (by attribute).
ODAPI_ONLY_OBJECTS = ('_self_supervised_rng',)

_Kernel = center_net_pb2.CenterNet.DeepMACMaskEstimation.EmbeddingHeadKernel
KERNEL_SHAPES = {_Kernel.KERNEL_3X3: (3, 3), _Kernel.KERNEL_1X3: (1, 3)}
DEFAULT_KERNEL_SHAPE = (3, 3)
_FIRST_CONV = '/0/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE'


def embedding_kernel_shape(kernel_enum):
  """(height, width) of an ``EmbeddingHeadKernel`` value; None for AUTO."""
  return KERNEL_SHAPES.get(kernel_enum)


def _kernel_enum(shape):
  for value, known in KERNEL_SHAPES.items():
    if tuple(known) == tuple(shape):
      return value
  return None


def checkpoint_embedding_kernel(checkpoint_path):
  """(height, width) of the embedding heads' first conv in a checkpoint.

  Args:
    checkpoint_path: a checkpoint prefix (``.../ckpt-51``).

  Returns:
    e.g. (1, 3), or None when the checkpoint has no Deep-MAC embedding head
    (a CenterNet or backbone-only checkpoint).

  Raises:
    ConfigError: the two heads disagree (not a checkpoint of one model).
  """
  shapes = {}
  for key, shape in tf.train.list_variables(checkpoint_path):
    for head in EMBEDDING_HEADS:
      if key.endswith(f'_prediction_head_dict/{head}{_FIRST_CONV}'):
        shapes[head] = tuple(int(v) for v in shape[:2])
  if not shapes:
    return None
  if len(set(shapes.values())) > 1:
    raise ConfigError(f'checkpoint {checkpoint_path}: the embedding heads '
                      f'have different kernel shapes {shapes}.')
  return next(iter(shapes.values()))


def model_config_for_checkpoint(model_config, checkpoint_path):
  """The model config to build for restoring ``checkpoint_path``.

  Args:
    model_config: ``DetectionModel`` proto (not modified).
    checkpoint_path: checkpoint prefix, or None (fresh training).

  Returns:
    ``model_config`` itself when there is nothing to choose; else a copy
    whose ``embedding_head_kernel`` is the checkpoint's (for ``AUTO``).

  Raises:
    ConfigError: an explicit ``embedding_head_kernel`` that the checkpoint
      contradicts, or a kernel shape no OD API release wrote.
  """
  if (checkpoint_path is None or
      model_config.WhichOneof('model') != 'center_net' or
      not model_config.center_net.HasField('deepmac_mask_estimation')):
    return model_config
  found = checkpoint_embedding_kernel(checkpoint_path)
  if found is None:
    return model_config
  configured = model_config.center_net.deepmac_mask_estimation
  wanted = embedding_kernel_shape(configured.embedding_head_kernel)
  if wanted is not None:
    if tuple(wanted) != found:
      raise ConfigError(
          f'{FIELD}: {_Kernel.Name(configured.embedding_head_kernel)} but '
          f'checkpoint {checkpoint_path} has {found[0]}x{found[1]} '
          'embedding-head kernels; set AUTO (or remove the field) to follow '
          'the checkpoint.')
    return model_config
  value = _kernel_enum(found)
  if value is None:
    raise ConfigError(
        f'checkpoint {checkpoint_path}: embedding-head kernels are '
        f'{found[0]}x{found[1]}; deepmac_tf builds the OD API\'s 3x3 '
        '(2021 release) or 1x3 (later releases).')
  resolved = type(model_config)()
  resolved.CopyFrom(model_config)
  resolved.center_net.deepmac_mask_estimation.embedding_head_kernel = value
  logging.info('Deep-MAC embedding heads built %dx%d, as in checkpoint %s.',
               found[0], found[1], checkpoint_path)
  return resolved


def configs_for_checkpoint(configs, checkpoint_path):
  """``configs`` (the pipeline dict) with ``model`` resolved for a
  checkpoint (``model_config_for_checkpoint``); a new dict when changed."""
  model = model_config_for_checkpoint(configs['model'], checkpoint_path)
  if model is configs['model']:
    return configs
  return dict(configs, model=model)


def odapi_only_keys(checkpoint_path):
  """Checkpoint keys under an OD API-only object (``ODAPI_ONLY_OBJECTS``)."""
  return sorted(key for key, _ in tf.train.list_variables(checkpoint_path)
                if any(f'/{name}/' in f'/{key}' for name in
                       ODAPI_ONLY_OBJECTS))


def log_ignored_odapi_objects(checkpoint_path):
  """Logs (and returns) the OD API-only keys a restore will skip."""
  keys = odapi_only_keys(checkpoint_path)
  if keys:
    logging.info('Checkpoint %s: ignoring OD API-only object(s) that hold no '
                 'weights of this model: %s', checkpoint_path,
                 ', '.join(k.replace('/.ATTRIBUTES/VARIABLE_VALUE', '')
                           for k in keys))
  return keys
