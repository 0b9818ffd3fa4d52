"""The one registry of mask-head networks, built by `network_type` name.

`build_mask_head(name, nc)` returns the head's core network (the OD API's
`MaskHeadNetwork._net`): a Keras layer mapping crop features [N, S, S, C_in]
to [N, S, S, C_out]. MaskHeadNetwork adds the input assembly and the 1x1
projection to one logit. Parameter-free heads get the identity here; their
per-instance computation lives in MaskHeadNetwork (see parameter_free.py).

Families: ResNet (resnet_heads.py), ResNet bottleneck (bottleneck_heads.py),
Mask R-CNN's plain conv stack (fcn_heads.py),
Hourglass (hourglass_heads.py, imported on first use), fully connected
(fully_connected.py), parameter-free (parameter_free.py).
"""

import difflib
import numbers

from deepmac_tf import errors
from deepmac_tf.mask_heads import bottleneck_heads
from deepmac_tf.mask_heads import fcn_heads
from deepmac_tf.mask_heads import fully_connected
from deepmac_tf.mask_heads import parameter_free
from deepmac_tf.mask_heads import resnet_heads

NETWORK_TYPE_FIELD = 'model.center_net.deepmac_mask_estimation.network_type'
NUM_INIT_CHANNELS_FIELD = (
    'model.center_net.deepmac_mask_estimation.num_init_channels')
MASK_SIZE_FIELD = 'model.center_net.deepmac_mask_estimation.mask_size'

# Hourglass heads -> spatial downsampling factor of their encoder (2**stages;
# 1 for the variant without encoder-decoder). Built by hourglass_heads.py.
HOURGLASS_DOWNSAMPLING = {
    'hourglass10': 2,
    'hourglass20': 4,
    'hourglass32': 8,
    'hourglass52': 32,
    'hourglass100': 32,
    'hourglass20_uniform_size': 1,
    'hourglass20_no_shortcut': 4,
}

_FIXED_NAMES = (
    resnet_heads.RESNET_HEAD_NAMES +
    tuple(HOURGLASS_DOWNSAMPLING) +
    bottleneck_heads.BOTTLENECK_HEAD_NAMES +
    fcn_heads.FCN_HEAD_NAMES +
    fully_connected.FULLY_CONNECTED_HEAD_NAMES +
    (parameter_free.EMBEDDING_PROJECTION,))


def mask_head_names():
  """Every valid network_type; 'cond_inst<D>' stands for cond_inst1, 2, ...."""
  return _FIXED_NAMES + (parameter_free.COND_INST_PATTERN,)


def is_registered(network_type):
  """Whether `network_type` names a mask head."""
  return (network_type in _FIXED_NAMES or
          parameter_free.parse_cond_inst_depth(network_type) is not None)


def is_parameter_free(network_type):
  """True for embedding_projection and cond_inst<D> (no variables).

  Args:
    network_type: a registered name.

  Raises:
    ConfigError: for an unknown name.
  """
  _check_registered(network_type)
  return parameter_free.is_parameter_free_name(network_type)


def required_mask_size_divisor(network_type):
  """The crop size S must be a multiple of this (hourglass: 2**stages)."""
  _check_registered(network_type)
  return HOURGLASS_DOWNSAMPLING.get(network_type, 1)


def _check_registered(network_type):
  if isinstance(network_type, str) and is_registered(network_type):
    return
  candidates = _FIXED_NAMES + tuple(
      '{}{}'.format(parameter_free.COND_INST_PREFIX, d) for d in range(1, 10))
  close = difflib.get_close_matches(str(network_type), candidates, n=1,
                                    cutoff=0.6)
  hint = ' Did you mean {!r}?'.format(close[0]) if close else ''
  raise errors.ConfigError(
      '{}: unknown mask head {!r}.{} Valid names: {}.'.format(
          NETWORK_TYPE_FIELD, network_type, hint,
          ', '.join(mask_head_names())))


def _check_num_init_channels(num_init_channels):
  if (isinstance(num_init_channels, bool) or
      not isinstance(num_init_channels, numbers.Integral) or
      num_init_channels < 1):
    raise errors.ConfigError('{} must be a positive integer, got {!r}.'.format(
        NUM_INIT_CHANNELS_FIELD, num_init_channels))


def check_mask_size(network_type, mask_size):
  """Raises ConfigError unless mask_size fits the head (None is accepted)."""
  if mask_size is None:
    return
  divisor = required_mask_size_divisor(network_type)
  if int(mask_size) < 1 or int(mask_size) % divisor:
    raise errors.ConfigError(
        '{}: {} does not suit network_type {!r}, which needs a positive '
        'multiple of {}.'.format(MASK_SIZE_FIELD, mask_size, network_type,
                                 divisor))


def _build_hourglass(network_type, num_init_channels, use_sync_batch_norm):
  # Imported on first use: the hourglass heads pull in deepmac_tf.layers.
  from deepmac_tf.mask_heads import hourglass_heads  # pylint: disable=g-import-not-at-top
  return hourglass_heads.build_hourglass_head(
      network_type, num_init_channels,
      use_sync_batch_norm=use_sync_batch_norm)


def build_mask_head(network_type, num_init_channels, mask_size=None,
                    use_sync_batch_norm=False):
  """Builds the core network of a mask head by name.

  Args:
    network_type: a name from mask_head_names() (cond_inst<D> with D >= 1).
    num_init_channels: nc, the base width of the head.
    mask_size: S; required by the fully connected heads, checked against
      required_mask_size_divisor() when given.
    use_sync_batch_norm: synchronized batch norm across replicas.

  Returns:
    A Keras layer mapping [N, S, S, C_in] to [N, S, S, C_out] (C_out = 1 for
    the fully connected heads, C_in for the parameter-free identity).

  Raises:
    ConfigError: unknown name, bad num_init_channels or mask_size.
  """
  _check_registered(network_type)
  _check_num_init_channels(num_init_channels)
  check_mask_size(network_type, mask_size)
  num_init_channels = int(num_init_channels)
  if network_type in resnet_heads.RESNET_HEAD_SPECS:
    return resnet_heads.build_resnet_head(network_type, num_init_channels,
                                          use_sync_batch_norm)
  if network_type in bottleneck_heads.BOTTLENECK_HEAD_SPECS:
    return bottleneck_heads.build_bottleneck_head(
        network_type, num_init_channels, use_sync_batch_norm)
  if network_type in fcn_heads.FCN_HEAD_SPECS:
    return fcn_heads.build_fcn_head(network_type, num_init_channels,
                                    use_sync_batch_norm)
  if network_type in HOURGLASS_DOWNSAMPLING:
    return _build_hourglass(network_type, num_init_channels,
                            use_sync_batch_norm)
  if network_type in fully_connected.FULLY_CONNECTED_HEAD_SPECS:
    if mask_size is None:
      raise errors.ConfigError(
          '{} must be set for the fully connected head {!r}.'.format(
              MASK_SIZE_FIELD, network_type))
    return fully_connected.build_fully_connected_head(
        network_type, num_init_channels, mask_size)
  return parameter_free.IdentityMaskNet(name=network_type)


__all__ = ['HOURGLASS_DOWNSAMPLING', 'NETWORK_TYPE_FIELD', 'build_mask_head',
           'check_mask_size', 'is_parameter_free', 'is_registered',
           'mask_head_names', 'required_mask_size_divisor']
