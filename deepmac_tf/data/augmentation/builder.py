"""Builds one augmentation function from ``PreprocessingStep`` protos.

Each step's fields are checked here, so a bad value fails when the pipeline
is built, with a ``ConfigError`` naming the field, instead of deep inside
tf.data.
"""

from deepmac_tf.data.augmentation import catalogue
from deepmac_tf.data.augmentation import checks
from deepmac_tf.data.augmentation import color
from deepmac_tf.data.augmentation import crops
from deepmac_tf.data.augmentation import geometric
from deepmac_tf.errors import ConfigError
from deepmac_tf.protos import preprocessor_pb2


_require = checks.require
_range = checks.value_range


def _probability(step, path):
  return {'probability': checks.probability(step.probability,
                                            f'{path}.probability')}


def _no_keypoints(step, field, path):
  _require(not getattr(step, field), f'{path}.{field}',
           'keypoints are not supported by deepmac_tf; remove this field.')


def _flip_kwargs(step, path):
  _no_keypoints(step, 'keypoint_flip_permutation', path)
  return _probability(step, path)


def _rotation_kwargs(step, path):
  _no_keypoints(step, 'keypoint_rot_permutation', path)
  return _probability(step, path)


def _image_scale_kwargs(step, path):
  _range(step.min_scale_ratio, step.max_scale_ratio, path, 'min_scale_ratio',
         'max_scale_ratio', strict_minimum=True)
  return {'min_scale_ratio': step.min_scale_ratio,
          'max_scale_ratio': step.max_scale_ratio}


def _brightness_kwargs(step, path):
  _require(0.0 <= step.max_delta <= 1.0, f'{path}.max_delta',
           f'must be in [0, 1], got {step.max_delta}.')
  return {'max_delta': step.max_delta}


def _factor_kwargs(step, path):
  _range(step.min_delta, step.max_delta, path, 'min_delta', 'max_delta')
  return {'min_delta': step.min_delta, 'max_delta': step.max_delta}


def _hue_kwargs(step, path):
  _require(0.0 <= step.max_delta <= 0.5, f'{path}.max_delta',
           f'must be in [0, 0.5], got {step.max_delta}.')
  return {'max_delta': step.max_delta}


def _jitter_kwargs(step, path):
  _require(0.0 <= step.ratio < 1.0, f'{path}.ratio',
           f'must be in [0, 1), got {step.ratio}.')
  mode = preprocessor_pb2.RandomJitterBoxes.JitterMode.Name(
      step.jitter_mode).lower()
  return {'ratio': step.ratio, 'jitter_mode': mode}


def _absolute_pad_kwargs(step, path):
  _require(step.max_height_padding >= 0, f'{path}.max_height_padding',
           f'must be >= 0, got {step.max_height_padding}.')
  _require(step.max_width_padding >= 0, f'{path}.max_width_padding',
           f'must be >= 0, got {step.max_width_padding}.')
  return {'max_height_padding': step.max_height_padding,
          'max_width_padding': step.max_width_padding,
          'pad_color': checks.pad_color(step.pad_color, path)}


def _square_crop_kwargs(step, path):
  _require(step.max_border >= 0, f'{path}.max_border',
           f'must be >= 0, got {step.max_border}.')
  _require(step.num_scales >= 1, f'{path}.num_scales',
           f'must be >= 1, got {step.num_scales}.')
  _range(step.scale_min, step.scale_max, path, 'scale_min', 'scale_max',
         strict_minimum=True)
  return {'max_border': step.max_border, 'scale_min': step.scale_min,
          'scale_max': step.scale_max, 'num_scales': step.num_scales}


def _scale_crop_pad_kwargs(step, path):
  _require(step.output_size >= 1, f'{path}.output_size',
           f'must be >= 1, got {step.output_size}.')
  _range(step.scale_min, step.scale_max, path, 'scale_min', 'scale_max',
         strict_minimum=True)
  return {'output_size': step.output_size, 'scale_min': step.scale_min,
          'scale_max': step.scale_max}


# oneof field name -> (augmentation function, proto -> kwargs).
STEPS = {
    'random_horizontal_flip': (geometric.random_horizontal_flip,
                               _flip_kwargs),
    'random_vertical_flip': (geometric.random_vertical_flip, _flip_kwargs),
    'random_rotation90': (geometric.random_rotation90, _rotation_kwargs),
    'random_image_scale': (geometric.random_image_scale, _image_scale_kwargs),
    'random_adjust_brightness': (color.random_adjust_brightness,
                                 _brightness_kwargs),
    'random_adjust_contrast': (color.random_adjust_contrast, _factor_kwargs),
    'random_adjust_hue': (color.random_adjust_hue, _hue_kwargs),
    'random_adjust_saturation': (color.random_adjust_saturation,
                                 _factor_kwargs),
    'random_jitter_boxes': (geometric.random_jitter_boxes, _jitter_kwargs),
    'random_absolute_pad_image': (geometric.random_absolute_pad_image,
                                  _absolute_pad_kwargs),
    'random_square_crop_by_scale': (crops.random_square_crop_by_scale,
                                    _square_crop_kwargs),
    'random_scale_crop_and_pad_to_square': (
        crops.random_scale_crop_and_pad_to_square, _scale_crop_pad_kwargs),
    **catalogue.STEPS,
}


def build_augmentation_fn(data_augmentation_options,
                          config_path='train_config.data_augmentation_options'):
  """Builds the function applying the configured steps in order.

  Args:
    data_augmentation_options: iterable of ``PreprocessingStep`` protos (e.g.
      ``train_config.data_augmentation_options``).
    config_path: where the steps live, for error messages.

  Returns:
    ``fn(tensors) -> tensors`` on one image's tensor dict (see
    ``augmentation.instances``); the identity when there are no steps.

  Raises:
    ConfigError: a step sets nothing, an OD API step deepmac_tf does not
      implement (``catalogue.UNSUPPORTED_STEPS``), an unsupported field
      (keypoints) or an out-of-range value; the message names the field.
  """
  steps = []
  for index, step in enumerate(data_augmentation_options):
    path = f'{config_path}[{index}]'
    if not isinstance(step, preprocessor_pb2.PreprocessingStep):
      raise ConfigError(f'{path}: expected a PreprocessingStep proto, got '
                        f'{type(step).__name__}.')
    name = step.WhichOneof('preprocessing_step')
    if name is None:
      raise ConfigError(f'{path}: sets no preprocessing step; expected one of '
                        f'{sorted(STEPS)}.')
    if name not in STEPS:
      raise ConfigError(
          f'{path}.{name}: supported by the OD API, not by deepmac_tf: '
          f'{name} ({catalogue.UNSUPPORTED_STEPS[name]}).')
    function, kwargs_fn = STEPS[name]
    steps.append((function, kwargs_fn(getattr(step, name), f'{path}.{name}')))

  def augment(tensors):
    for function, kwargs in steps:
      tensors = function(tensors, **kwargs)
    return tensors

  return augment
