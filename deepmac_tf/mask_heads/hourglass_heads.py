"""Hourglass mask heads of Deep-MAC, by the OD API's `network_type` names.

Each head is a single-stack `HourglassNetwork` built without the initial
downsampling (3x3 stride-1 stem), so the output has the input's resolution.
The returned object *is* the HourglassNetwork (with `return_last_only`), so a
mask-head wrapper storing it as `_net` gets the OD API checkpoint path
`_mask_net/_net/conv_input/...`.

| network_type             | blocks per level | widths (x nc)    | levels |
|--------------------------|------------------|------------------|--------|
| hourglass10              | 1, 1             | 2, 2             | 1      |
| hourglass20              | 1, 2, 2          | 2, 2, 3          | 2      |
| hourglass32              | 2, 2, 2, 2       | 2, 2, 3, 3       | 3      |
| hourglass52              | 2, 2, 2, 2, 2, 4 | 2, 2, 3, 3, 3, 4 | 5      |
| hourglass100             | 4, 4, 4, 4, 4, 8 | 2, 2, 3, 3, 3, 4 | 5      |
| hourglass20_uniform_size | 1, 2, 2          | 2, 2, 3          | 2 (*)  |
| hourglass20_no_shortcut  | 1, 2, 2          | 2, 2, 3          | 2 (**) |

(*) no downsampling between levels; (**) no long-range encoder-decoder skips.
The stem has nc channels; the output has 2 * nc.
"""

from deepmac_tf.errors import ArgumentError
from deepmac_tf.layers import hourglass_network

# network_type -> (depth, stagewise_downsample, encoder_decoder_shortcut).
_HEADS = {
    'hourglass10': (10, True, True),
    'hourglass20': (20, True, True),
    'hourglass32': (32, True, True),
    'hourglass52': (52, True, True),
    'hourglass100': (100, True, True),
    'hourglass20_uniform_size': (20, False, True),
    'hourglass20_no_shortcut': (20, True, False),
}

HOURGLASS_HEAD_NAMES = tuple(_HEADS)


def _lookup(network_type):
  if network_type not in _HEADS:
    raise ArgumentError(
        f'unknown hourglass mask head {network_type!r}; known: '
        f'{", ".join(HOURGLASS_HEAD_NAMES)}.', 'network_type')
  return _HEADS[network_type]


def required_mask_size_multiple(network_type):
  """The mask size (crop height and width) must be a multiple of this.

  Args:
    network_type: one of HOURGLASS_HEAD_NAMES.

  Returns:
    2**levels for the downsampling heads, 1 for hourglass20_uniform_size.

  Raises:
    ArgumentError: on an unknown name.
  """
  depth, stagewise_downsample, _ = _lookup(network_type)
  if not stagewise_downsample:
    return 1
  blocks, _ = hourglass_network.HOURGLASS_DEPTHS[depth]
  return 2 ** (len(blocks) - 1)


def build_hourglass_head(network_type, num_init_channels,
                         use_sync_batch_norm=False):
  """Builds the hourglass mask head `network_type`.

  Args:
    network_type: one of HOURGLASS_HEAD_NAMES.
    num_init_channels: int >= 1, nc (the stem width).
    use_sync_batch_norm: bool, synchronized batch norm across replicas.

  Returns:
    A `HourglassNetwork` layer mapping [num_instances, S, S, C_in] to
    [num_instances, S, S, 2 * num_init_channels] (a single tensor). S must be a
    multiple of `required_mask_size_multiple(network_type)`.

  Raises:
    ArgumentError: on an unknown name (listing the known ones) or a bad nc.
  """
  depth, stagewise_downsample, shortcut = _lookup(network_type)
  if int(num_init_channels) != num_init_channels or num_init_channels < 1:
    raise ArgumentError(
        f'must be a positive integer for {network_type!r}, got '
        f'{num_init_channels!r}.', 'num_init_channels')
  return hourglass_network.hourglass_by_depth(
      depth, int(num_init_channels), initial_downsample=False,
      stagewise_downsample=stagewise_downsample,
      encoder_decoder_shortcut=shortcut,
      use_sync_batch_norm=use_sync_batch_norm, return_last_only=True,
      name=network_type)
