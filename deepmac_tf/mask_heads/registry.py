"""The one registry of mask-head networks, built by `network_type` name.

`build_mask_head(name, nc)` returns the head's core network (the OD API's
`MaskHeadNetwork._net`): a Keras layer mapping crop features [N, S, S, C_in]
to [N, S, S, C_out]. MaskHeadNetwork adds the input assembly and the 1x1
projection to one logit. Parameter-free heads get the identity here; their
per-instance computation lives in MaskHeadNetwork (see parameter_free.py).

Families: ResNet (resnet_heads.py), ResNet bottleneck (bottleneck_heads.py),
Mask R-CNN's plain conv stack (fcn_heads.py), Hourglass (hourglass_heads.py,
which owns the crop-size divisor of each hourglass head), fully connected
(fully_connected.py), parameter-free (parameter_free.py).

Heads know no config: bad arguments raise ``errors.ArgumentError`` naming
the argument (``network_type``, ``num_init_channels``, ``mask_size``); the
builder maps it to its own field (Deep-MAC: ``deepmac_mask_estimation``,
Deep-MARC: ``deepmarc_mask_head``).
"""

import numbers

from deepmac_tf import registry as registry_lib
from deepmac_tf.errors import ArgumentError
from deepmac_tf.mask_heads import bottleneck_heads
from deepmac_tf.mask_heads import fcn_heads
from deepmac_tf.mask_heads import fully_connected
from deepmac_tf.mask_heads import hourglass_heads
from deepmac_tf.mask_heads import parameter_free
from deepmac_tf.mask_heads import resnet_heads

MASK_HEADS = registry_lib.Registry('mask head', 'network_type')


def _resnet(name, nc, mask_size, use_sync_batch_norm):
  del mask_size
  return resnet_heads.build_resnet_head(name, nc, use_sync_batch_norm)


def _bottleneck(name, nc, mask_size, use_sync_batch_norm):
  del mask_size
  return bottleneck_heads.build_bottleneck_head(name, nc, use_sync_batch_norm)


def _fcn(name, nc, mask_size, use_sync_batch_norm):
  del mask_size
  return fcn_heads.build_fcn_head(name, nc, use_sync_batch_norm)


def _hourglass(name, nc, mask_size, use_sync_batch_norm):
  del mask_size
  return hourglass_heads.build_hourglass_head(
      name, nc, use_sync_batch_norm=use_sync_batch_norm)


def _fully_connected(name, nc, mask_size, use_sync_batch_norm):
  del use_sync_batch_norm
  if mask_size is None:
    raise ArgumentError(f'must be set for the fully connected head {name!r}.',
                        'mask_size')
  return fully_connected.build_fully_connected_head(name, nc, mask_size)


def _identity(name, nc, mask_size, use_sync_batch_norm):
  del nc, mask_size, use_sync_batch_norm
  return parameter_free.IdentityMaskNet(name=name)


for _name in resnet_heads.RESNET_HEAD_NAMES:
  MASK_HEADS.register(_name, _resnet)
for _name in hourglass_heads.HOURGLASS_HEAD_NAMES:
  MASK_HEADS.register(
      _name, _hourglass,
      mask_size_divisor=hourglass_heads.required_mask_size_multiple(_name))
for _name in bottleneck_heads.BOTTLENECK_HEAD_NAMES:
  MASK_HEADS.register(_name, _bottleneck)
for _name in fcn_heads.FCN_HEAD_NAMES:
  MASK_HEADS.register(_name, _fcn)
for _name in fully_connected.FULLY_CONNECTED_HEAD_NAMES:
  MASK_HEADS.register(_name, _fully_connected)
MASK_HEADS.register(parameter_free.EMBEDDING_PROJECTION, _identity,
                    parameter_free=True)
MASK_HEADS.register_family(
    parameter_free.COND_INST_PATTERN,
    lambda name: parameter_free.parse_cond_inst_depth(name) is not None,
    _identity, parameter_free=True)


def mask_head_names():
  """Every valid network_type; 'cond_inst<D>' stands for cond_inst1, 2, ...."""
  return MASK_HEADS.names()


def is_registered(network_type):
  """Whether `network_type` names a mask head."""
  return network_type in MASK_HEADS


def is_parameter_free(network_type):
  """True for embedding_projection and cond_inst<D> (no variables).

  Raises:
    ArgumentError: for an unknown name.
  """
  return bool(MASK_HEADS.metadata(network_type).get('parameter_free'))


def required_mask_size_divisor(network_type):
  """The crop size S must be a multiple of this (hourglass: 2**levels)."""
  return MASK_HEADS.metadata(network_type).get('mask_size_divisor', 1)


def check_mask_size(network_type, mask_size):
  """Raises ArgumentError unless mask_size fits the head (None accepted)."""
  if mask_size is None:
    return
  divisor = required_mask_size_divisor(network_type)
  if int(mask_size) < 1 or int(mask_size) % divisor:
    raise ArgumentError(
        f'{mask_size} cannot be taken by network_type "{network_type}", '
        f'which needs a positive multiple of {divisor}.', 'mask_size')


def check_num_init_channels(num_init_channels):
  """Raises ArgumentError unless num_init_channels is a positive integer."""
  if (isinstance(num_init_channels, bool) or
      not isinstance(num_init_channels, numbers.Integral) or
      num_init_channels < 1):
    raise ArgumentError(f'must be a positive integer, got '
                        f'{num_init_channels!r}.', 'num_init_channels')


def check_arguments(network_type, num_init_channels, mask_size=None):
  """Every check ``build_mask_head`` makes before building (builders call it
  to validate a config without building)."""
  MASK_HEADS.get(network_type)
  check_num_init_channels(num_init_channels)
  check_mask_size(network_type, mask_size)


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
    ArgumentError: unknown name, bad num_init_channels or mask_size.
  """
  check_arguments(network_type, num_init_channels, mask_size)
  return MASK_HEADS.build(network_type, network_type, int(num_init_channels),
                          mask_size, use_sync_batch_norm)


__all__ = ['MASK_HEADS', 'build_mask_head', 'check_arguments',
           'check_mask_size', 'check_num_init_channels', 'is_parameter_free',
           'is_registered', 'mask_head_names', 'required_mask_size_divisor']
