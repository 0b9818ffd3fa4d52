"""The catalogue of mask-head networks, built by `network_type` by one registry.

Public API:
  MaskHeadNetwork: (instance embedding [N, D], crop [N, S, S, E]) -> [N, S, S]
    logits; the OD API's `_mask_net`.
  build_mask_head: name -> core network [N, S, S, C_in] -> [N, S, S, C_out].
  mask_head_names, is_parameter_free, required_mask_size_divisor.
"""

from deepmac_tf.mask_heads.bottleneck_heads import BOTTLENECK_HEAD_NAMES
from deepmac_tf.mask_heads.bottleneck_heads import BottleneckMaskNetwork
from deepmac_tf.mask_heads.fully_connected import FULLY_CONNECTED_HEAD_NAMES
from deepmac_tf.mask_heads.fully_connected import FullyConnectedMaskHead
from deepmac_tf.mask_heads.hourglass_heads import HOURGLASS_HEAD_NAMES
from deepmac_tf.mask_heads.mask_head_network import MaskHeadNetwork
from deepmac_tf.mask_heads.parameter_free import COND_INST_PATTERN
from deepmac_tf.mask_heads.parameter_free import conditional_conv_num_params
from deepmac_tf.mask_heads.parameter_free import embedding_projection
from deepmac_tf.mask_heads.parameter_free import IdentityMaskNet
from deepmac_tf.mask_heads.parameter_free import parse_cond_inst_depth
from deepmac_tf.mask_heads.parameter_free import per_pixel_conditional_conv
from deepmac_tf.mask_heads.parameter_free import per_pixel_single_conv
from deepmac_tf.mask_heads.registry import build_mask_head
from deepmac_tf.mask_heads.registry import check_arguments
from deepmac_tf.mask_heads.registry import check_mask_size
from deepmac_tf.mask_heads.registry import is_parameter_free
from deepmac_tf.mask_heads.registry import is_registered
from deepmac_tf.mask_heads.registry import mask_head_names
from deepmac_tf.mask_heads.registry import required_mask_size_divisor
from deepmac_tf.mask_heads.resnet_heads import RESNET_HEAD_NAMES
from deepmac_tf.mask_heads.resnet_heads import ResNetMaskNetwork

__all__ = [
    'BOTTLENECK_HEAD_NAMES', 'BottleneckMaskNetwork', 'COND_INST_PATTERN',
    'FULLY_CONNECTED_HEAD_NAMES', 'FullyConnectedMaskHead',
    'HOURGLASS_HEAD_NAMES', 'IdentityMaskNet',
    'MaskHeadNetwork', 'RESNET_HEAD_NAMES', 'ResNetMaskNetwork',
    'build_mask_head', 'check_arguments', 'check_mask_size',
    'conditional_conv_num_params', 'embedding_projection', 'is_parameter_free', 'is_registered',
    'mask_head_names', 'parse_cond_inst_depth', 'per_pixel_conditional_conv',
    'per_pixel_single_conv', 'required_mask_size_divisor',
]
