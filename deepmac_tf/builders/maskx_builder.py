"""``deepmarc_mask_head`` MaskX R-CNN options -> ``MaskHeadParams`` fields.

``weight_transfer { input num_layers activation hidden_dim stop_gradient }``
(class-specific masks predicted from the box head's weights),
``mlp_mask_branch { num_fc_layers fc_dim }`` (fused class-agnostic MLP
branch) and ``training_mode`` (END_TO_END | STAGE_WISE). Every inconsistent
combination is one ``ConfigError`` naming the field.
"""

from deepmac_tf.errors import ConfigError
from deepmac_tf.mask_heads import fully_connected
from deepmac_tf.mask_heads import weight_transfer as transfer_lib
from deepmac_tf.meta_architectures import mask_rcnn_params as params_lib
from deepmac_tf.protos import faster_rcnn_pb2

MASK_HEAD_FIELD = 'model.faster_rcnn.deepmarc_mask_head'
_M = MASK_HEAD_FIELD
_Head = faster_rcnn_pb2.DeepMarcMaskHead
_Transfer = _Head.WeightTransfer
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


def _weight_transfer(config):
  field = f'{_M}.weight_transfer'
  if config.class_agnostic:
    raise ConfigError(
        f'{field}: predicts a class-specific last layer; set '
        f'{_M}.class_agnostic: false (or remove weight_transfer).')
  if config.network_type in fully_connected.FULLY_CONNECTED_HEAD_NAMES:
    raise ConfigError(
        f'{field}: network_type "{config.network_type}" predicts its mask '
        'with a dense layer (one channel), not a per-class 1x1 convolution '
        'over features, so there is no per-class layer to predict; use a '
        'convolutional head (mask_rcnn_fcn, resnet*, hourglass*).')
  t = config.weight_transfer
  if not 1 <= t.num_layers <= transfer_lib.MAX_LAYERS:
    raise ConfigError(f'{field}.num_layers: {t.num_layers}; use 1 (affine), '
                      f'2 or {transfer_lib.MAX_LAYERS}.')
  if t.hidden_dim < 1:
    raise ConfigError(f'{field}.hidden_dim: must be positive, got '
                      f'{t.hidden_dim}.')
  return params_lib.WeightTransferParams(
      input=_INPUTS[t.input], num_layers=t.num_layers,
      activation=_ACTIVATIONS[t.activation], hidden_dim=t.hidden_dim,
      stop_gradient=t.stop_gradient)


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
