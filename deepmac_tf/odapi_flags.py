"""OD API script flags that deepmac_tf accepts but cannot honour.

The OD API's ``exporter_main_v2.py`` has Context R-CNN side-input flags
(``--use_side_inputs``, ``--side_input_shapes``, ``--side_input_types``,
``--side_input_names``); our scripts accept them, so OD API command lines
parse, and end with one clear ERROR when one is set.
"""

from deepmac_tf.errors import ConfigError

SIDE_INPUT_FLAGS = ('use_side_inputs', 'side_input_shapes',
                    'side_input_types', 'side_input_names')
SIDE_INPUT_HELP = ('OD API flag for Context R-CNN side inputs: supported by '
                   'the OD API, not by deepmac_tf (must stay unset).')


def define_side_input_flags(flags_module):
  """Defines the four side-input flags on absl ``flags_module``."""
  flags_module.DEFINE_boolean('use_side_inputs', False, SIDE_INPUT_HELP)
  for name in SIDE_INPUT_FLAGS[1:]:
    flags_module.DEFINE_string(name, '', SIDE_INPUT_HELP)


def check_side_input_flags(flag_values):
  """Raises ConfigError naming the first side-input flag that is set."""
  for name in SIDE_INPUT_FLAGS:
    if getattr(flag_values, name):
      raise ConfigError(
          f'--{name}: Context R-CNN side inputs are supported by the OD API, '
          'not by deepmac_tf (its CenterNet / Deep-MAC / Mask R-CNN models '
          'take images only); remove the flag.')
