"""MaskX R-CNN options -> params: ``deepmarc_mask_head``'s
``weight_transfer``, ``mlp_mask_branch`` and ``training_mode`` (Mask R-CNN),
and ``deepmac_mask_estimation.weight_transfer`` (Deep-MAC).

``weight_transfer { input num_layers activation hidden_dim stop_gradient }``
(class-specific masks predicted from the class's detection weights),
``mlp_mask_branch { num_fc_layers fc_dim }`` (fused class-agnostic MLP
branch) and ``training_mode`` (END_TO_END | STAGE_WISE). Every inconsistent
combination is one ``ConfigError`` naming the field.
"""

from deepmac_tf.errors import ConfigError
from deepmac_tf.mask_heads import fully_connected
from deepmac_tf.mask_heads import registry as mask_head_registry
from deepmac_tf.mask_heads import weight_transfer as transfer_lib
from deepmac_tf.meta_architectures import mask_rcnn_params as params_lib
from deepmac_tf.protos import faster_rcnn_pb2
from deepmac_tf.protos import weight_transfer_pb2

MASK_HEAD_FIELD = 'model.faster_rcnn.deepmarc_mask_head'
_M = MASK_HEAD_FIELD
_Head = faster_rcnn_pb2.DeepMarcMaskHead
_Transfer = weight_transfer_pb2.WeightTransfer
_INPUTS = {
    _Transfer.CLS_AND_BOX: params_lib.TRANSFER_CLS_AND_BOX,
    _Transfer.CLS: params_lib.TRANSFER_CLS,
    _Transfer.BOX: params_lib.TRANSFER_BOX,
    _Transfer.RANDOM: params_lib.TRANSFER_RANDOM,
}
_ACTIVATIONS = {_Transfer.LEAKY_RELU: transfer_lib.LEAKY_RELU,
                _Transfer.RELU: transfer_lib.RELU}
_MODES = {_Head.END_TO_END: params_lib.END_TO_END,
          _Head.STAGE_WISE: params_lib.STAGE_WISE}
# Deep-MAC reads w_det(c) from the class's center-heatmap output conv; the
# CenterNet box heads are class-agnostic, so there is no per-class box input.
DEEPMAC_TRANSFER_INPUTS = (params_lib.TRANSFER_CLS, params_lib.TRANSFER_RANDOM)


def weight_transfer_params(t, field, transfer_input=None):
  """A ``WeightTransfer`` message -> ``WeightTransferParams`` (checked).

  Args:
    t: the message.
    field: its dotted config path (for errors).
    transfer_input: the input to use instead of ``t.input`` (None: t's).
  """
  if not 1 <= t.num_layers <= transfer_lib.MAX_LAYERS:
    raise ConfigError(f'{field}.num_layers: {t.num_layers}; use 1 (affine), '
                      f'2 or {transfer_lib.MAX_LAYERS}.')
  if t.hidden_dim < 1:
    raise ConfigError(f'{field}.hidden_dim: must be positive, got '
                      f'{t.hidden_dim}.')
  return params_lib.WeightTransferParams(
      input=transfer_input or _INPUTS[t.input], num_layers=t.num_layers,
      activation=_ACTIVATIONS[t.activation], hidden_dim=t.hidden_dim,
      stop_gradient=t.stop_gradient)


def _check_projection_head(field, network_type_field, network_type):
  """T predicts a per-class 1x1 projection over the head's last features:
  heads without one (fully connected, parameter-free) are refused."""
  if network_type in fully_connected.FULLY_CONNECTED_HEAD_NAMES:
    raise ConfigError(
        f'{field}: network_type "{network_type}" predicts its mask with a '
        'dense layer (one channel), not a per-class 1x1 convolution over '
        'features, so there is no per-class layer to predict; use a '
        'convolutional head (mask_rcnn_fcn, resnet*, hourglass*) in '
        f'{network_type_field}.')
  if (mask_head_registry.is_registered(network_type) and
      mask_head_registry.is_parameter_free(network_type)):
    raise ConfigError(
        f'{field}: network_type "{network_type}" is parameter-free (the '
        'instance embedding is its weights), so it has no 1x1 projection to '
        'predict; use a convolutional head (resnet*, hourglass*, ...) in '
        f'{network_type_field}.')


def _weight_transfer(config):
  field = f'{_M}.weight_transfer'
  if config.class_agnostic:
    raise ConfigError(
        f'{field}: predicts a class-specific last layer; set '
        f'{_M}.class_agnostic: false (or remove weight_transfer).')
  _check_projection_head(field, f'{_M}.network_type', config.network_type)
  return weight_transfer_params(config.weight_transfer, field)


def deepmac_weight_transfer_from_proto(t, field):
  """``deepmac_mask_estimation.weight_transfer`` -> ``WeightTransferParams``.

  An unset ``input`` means CLS here (the class's center-heatmap output
  weights); CLS_AND_BOX and BOX are refused: CenterNet's box heads
  (scale, offset) are class-agnostic, so no class has box weights.

  Args:
    t: the ``WeightTransfer`` message.
    field: its dotted config path.
  """
  transfer_input = params_lib.TRANSFER_CLS
  if t.HasField('input'):
    transfer_input = _INPUTS[t.input]
  if transfer_input not in DEEPMAC_TRANSFER_INPUTS:
    raise ConfigError(
        f'{field}.input: {_Transfer.Input.Name(t.input)} is not available on '
        'CenterNet / Deep-MAC: its box heads (scale, offset) are '
        'class-agnostic, so no class has box weights; use CLS (the class\'s '
        'center-heatmap output weights, the default here) or RANDOM.')
  return weight_transfer_params(t, field, transfer_input)


def check_deepmac_weight_transfer(field, p):
  """Deep-MAC settings that cannot go with weight transfer.

  Args:
    field: dotted path of ``deepmac_mask_estimation``.
    p: ``DeepMACParams`` with ``weight_transfer`` set.
  """
  _check_projection_head(f'{field}.weight_transfer',
                         f'{field}.network_type', p.network_type)
  if p.predict_full_resolution_masks:
    raise ConfigError(
        f'{field}.weight_transfer: needs crop-mode masks; set '
        f'{field}.predict_full_resolution_masks: false.')
  if (p.detector_free and
      p.weight_transfer.input != params_lib.TRANSFER_RANDOM):
    raise ConfigError(
        f'{field}.weight_transfer.input: a detector-free model has no '
        'center-heatmap head to read the class weights from; use RANDOM or '
        'train the detector too.')
  if getattr(p, 'teacher_student', None) is not None:
    raise ConfigError(
        f'{field}.weight_transfer: cannot be combined with '
        f'{field}.teacher_student (both make the masks class-specific); '
        'keep one.')


def _mlp_mask_branch(config):
  field = f'{_M}.mlp_mask_branch'
  b = config.mlp_mask_branch
  if b.num_fc_layers < 0:
    raise ConfigError(f'{field}.num_fc_layers: must be >= 0, got '
                      f'{b.num_fc_layers}.')
  if b.fc_dim < 1:
    raise ConfigError(f'{field}.fc_dim: must be positive, got {b.fc_dim}.')
  return params_lib.MlpMaskBranchParams(num_fc_layers=b.num_fc_layers,
                                        fc_dim=b.fc_dim)


def maskx_kwargs_from_proto(config):
  """``DeepMarcMaskHead`` -> ``MaskHeadParams`` keyword arguments
  ``weight_transfer``, ``mlp_mask_branch``, ``training_mode`` (checked)."""
  return {
      'weight_transfer': (_weight_transfer(config)
                          if config.HasField('weight_transfer') else None),
      'mlp_mask_branch': (_mlp_mask_branch(config)
                          if config.HasField('mlp_mask_branch') else None),
      'training_mode': _MODES[config.training_mode],
  }


def check_train_config(faster_rcnn_config, train_config):
  """STAGE_WISE trains the mask branch on a restored, frozen detector: it
  needs ``train_config.fine_tune_checkpoint`` (type "detection" restores
  the whole detector, "full" everything that matches).

  Raises:
    ConfigError: naming the missing or wrong field.
  """
  if not faster_rcnn_config.HasField('deepmarc_mask_head') or (
      faster_rcnn_config.deepmarc_mask_head.training_mode != _Head.STAGE_WISE):
    return
  if not train_config.fine_tune_checkpoint:
    raise ConfigError(
        'train_config.fine_tune_checkpoint: must be set when '
        f'{_M}.training_mode is STAGE_WISE (the detector is restored from '
        'it and frozen; only the mask branch trains).')
  kind = train_config.fine_tune_checkpoint_type
  if kind not in ('detection', 'full'):
    raise ConfigError(
        f'train_config.fine_tune_checkpoint_type: {kind!r}; STAGE_WISE '
        f'({_M}.training_mode) restores a trained detector: use "detection" '
        '(backbone, FPN, RPN and box head) or "full".')
