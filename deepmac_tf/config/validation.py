"""Semantic checks of pipeline configs, run when a model or input pipeline is
built (never at load time, so sample configs with placeholders load).

Each check raises one ``ConfigError`` naming the config field, e.g.
``model.center_net.deepmac_mask_estimation.mask_size: 24 cannot be taken by
network_type "hourglass52", which halves the crop 5 times; use a multiple of 32``.
"""

from deepmac_tf.errors import ConfigError
from deepmac_tf.protos import center_net_pb2
from deepmac_tf.protos import input_reader_pb2

PLACEHOLDER = 'PATH_TO_BE_CONFIGURED'

DEEPMAC_FIELD = 'model.center_net.deepmac_mask_estimation'

# Number of times each hourglass mask head halves its input (Table 14-17 of
# the paper; OD API hourglass_network stage counts). The crop size must be
# divisible by 2 ** stages.
HOURGLASS_DOWNSAMPLING_STAGES = {
    'hourglass10': 1,
    'hourglass20': 2,
    'hourglass20_no_shortcut': 2,
    'hourglass20_uniform_size': 0,
    'hourglass32': 3,
    'hourglass52': 5,
    'hourglass100': 5,
}

_DeepMAC = center_net_pb2.CenterNet.DeepMACMaskEstimation


def check_mask_size_for_network(network_type, mask_size, field):
  """Raises unless ``mask_size`` suits ``network_type``'s downsampling."""
  if mask_size <= 0:
    raise ConfigError(f'{field}: mask_size must be positive, got {mask_size}.')
  stages = HOURGLASS_DOWNSAMPLING_STAGES.get(network_type)
  if stages is None:
    return
  factor = 2 ** stages
  if mask_size % factor:
    raise ConfigError(
        f'{field}: {mask_size} cannot be taken by network_type '
        f'"{network_type}", which halves the crop {stages} times; use a '
        f'multiple of {factor} (e.g. {max(factor, 32)}).')


def validate_deepmac_mask_estimation(deepmac_config, num_classes,
                                     field=DEEPMAC_FIELD):
  """Checks a ``DeepMACMaskEstimation`` message for settings that cannot work.

  Args:
    deepmac_config: ``CenterNet.DeepMACMaskEstimation``.
    num_classes: the model's number of classes.
    field: dotted name of the message, for error messages.

  Raises:
    ConfigError: naming the field at fault.
  """
  d = deepmac_config
  if not d.HasField('classification_loss'):
    raise ConfigError(f'{field}.classification_loss: must be set, e.g. '
                      'classification_loss { weighted_sigmoid { } }.')
  for name in ('dim', 'pixel_embedding_dim', 'num_init_channels'):
    if getattr(d, name) <= 0:
      raise ConfigError(f'{field}.{name}: must be positive, got '
                        f'{getattr(d, name)}.')
  if d.mask_num_subsamples > 0:
    raise ConfigError(f'{field}.mask_num_subsamples: subsampling masks is not '
                      f'supported; use a value <= 0 (got '
                      f'{d.mask_num_subsamples}).')
  if d.predict_full_resolution_masks and d.max_roi_jitter_ratio > 0:
    raise ConfigError(f'{field}.max_roi_jitter_ratio: box jitter is not '
                      'supported together with predict_full_resolution_masks.')
  if not d.predict_full_resolution_masks:
    check_mask_size_for_network(d.network_type, d.mask_size,
                                f'{field}.mask_size')
  elif d.postprocess_crop_size <= 0:
    raise ConfigError(f'{field}.postprocess_crop_size: must be positive.')
  if d.network_type == 'embedding_projection':
    if d.use_xy:
      raise ConfigError(f'{field}.use_xy: must be false for network_type '
                        '"embedding_projection".')
    if d.pixel_embedding_dim != d.dim:
      raise ConfigError(
          f'{field}.pixel_embedding_dim: must equal dim ({d.dim}) for '
          f'network_type "embedding_projection", got {d.pixel_embedding_dim}.')
  if (d.network_type == 'embedding_projection' or
      d.network_type.startswith('cond_inst')) and d.use_instance_embedding:
    raise ConfigError(
        f'{field}.use_instance_embedding: must be false for the '
        f'parameter-free network_type "{d.network_type}".')
  for class_id in d.allowed_masked_classes_ids:
    if not 1 <= class_id <= num_classes:
      raise ConfigError(
          f'{field}.allowed_masked_classes_ids: {class_id} is not a class id '
          f'(ids are 1-based, from 1 to num_classes = {num_classes}).')
  if (d.augmented_self_supervision_loss_weight > 0 and
      d.augmented_self_supervision_loss == center_net_pb2.LOSS_UNSET):
    raise ConfigError(f'{field}.augmented_self_supervision_loss: must be set '
                      'when augmented_self_supervision_loss_weight > 0.')
  if (d.pointly_supervised_keypoint_loss_weight > 0 and
      not d.predict_full_resolution_masks):
    raise ConfigError(
        f'{field}.pointly_supervised_keypoint_loss_weight: the pointly '
        'supervised loss needs predict_full_resolution_masks: true.')


def check_no_placeholder(value, field):
  """Raises if a path still holds the sample configs' placeholder."""
  if PLACEHOLDER in value:
    raise ConfigError(f'{field}: "{value}" still contains the placeholder '
                      f'{PLACEHOLDER}; set it to a real path.')


def validate_input_reader(input_reader, field, require_masks=False):
  """Checks an ``InputReader`` before its files are opened.

  Args:
    input_reader: ``InputReader`` proto.
    field: its name in the pipeline config, e.g. ``train_input_reader``.
    require_masks: the model trains a mask head, so masks must be loaded.

  Raises:
    ConfigError: naming the field at fault.
  """
  if input_reader.WhichOneof('input_reader') != 'tf_record_input_reader':
    raise ConfigError(f'{field}: no tf_record_input_reader {{ input_path: '
                      '"..." }} block.')
  paths = input_reader.tf_record_input_reader.input_path
  if not paths:
    raise ConfigError(f'{field}.tf_record_input_reader.input_path: empty; '
                      'give at least one file or glob pattern.')
  for path in paths:
    check_no_placeholder(path, f'{field}.tf_record_input_reader.input_path')
  if input_reader.label_map_path:
    check_no_placeholder(input_reader.label_map_path,
                         f'{field}.label_map_path')
  if require_masks and not input_reader.load_instance_masks:
    raise ConfigError(f'{field}.load_instance_masks: must be true to train a '
                      'mask head (the records\' image/object/mask are '
                      'otherwise ignored).')
