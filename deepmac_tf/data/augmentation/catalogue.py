"""The rest of the OD API's ``PreprocessingStep`` catalogue: argument readers
for the steps implemented in ``box_crops``, ``pixels``, ``resizing`` and
``labels``, and the steps deepmac_tf does not implement, each with the
reason (the builder reports "supported by the OD API, not by deepmac_tf").

A reader maps the step's proto message (and its config path) to the keyword
arguments of the step function, with the OD API builder's defaults, and
checks every value that cannot work.
"""

import tensorflow as tf

from deepmac_tf.data.augmentation import box_crops
from deepmac_tf.data.augmentation import checks
from deepmac_tf.data.augmentation import geometric
from deepmac_tf.data.augmentation import labels
from deepmac_tf.data.augmentation import pixels
from deepmac_tf.data.augmentation import resizing
from deepmac_tf.protos import preprocessor_pb2

_RESIZE_METHODS = {
    preprocessor_pb2.ResizeImage.AREA: tf.image.ResizeMethod.AREA,
    preprocessor_pb2.ResizeImage.BICUBIC: tf.image.ResizeMethod.BICUBIC,
    preprocessor_pb2.ResizeImage.BILINEAR: tf.image.ResizeMethod.BILINEAR,
    preprocessor_pb2.ResizeImage.NEAREST_NEIGHBOR:
        tf.image.ResizeMethod.NEAREST_NEIGHBOR,
}


def _positive(value, path):
  checks.require(value >= 1, path, f'must be >= 1, got {value}.')
  return value


def _pair(values, default, path):
  """A repeated field of 2 values, or ``default`` when empty."""
  if not values:
    return default
  checks.require(len(values) == 2, path, 'needs 2 values (height, width '
                 f'ratios), got {len(values)}.')
  return tuple(values)


def _crop_kwargs(step, path):
  checks.require(0.0 <= step.min_object_covered <= 1.0,
                 f'{path}.min_object_covered',
                 f'must be in [0, 1], got {step.min_object_covered}.')
  checks.value_range(step.min_aspect_ratio, step.max_aspect_ratio, path,
                     'min_aspect_ratio', 'max_aspect_ratio',
                     strict_minimum=True)
  checks.value_range(step.min_area, step.max_area, path, 'min_area',
                     'max_area', strict_minimum=True)
  checks.require(step.max_area <= 1.0, f'{path}.max_area',
                 f'must be <= 1, got {step.max_area}.')
  return {'min_object_covered': step.min_object_covered,
          'aspect_ratio_range': (step.min_aspect_ratio,
                                 step.max_aspect_ratio),
          'area_range': (step.min_area, step.max_area),
          'overlap_thresh': checks.probability(step.overlap_thresh,
                                               f'{path}.overlap_thresh'),
          'clip_boxes': step.clip_boxes,
          'random_coef': checks.probability(step.random_coef,
                                            f'{path}.random_coef')}


def _crop_pad_kwargs(step, path):
  kwargs = _crop_kwargs(step, path)
  low = _pair(step.min_padded_size_ratio, (1.0, 1.0),
              f'{path}.min_padded_size_ratio')
  high = _pair(step.max_padded_size_ratio, (2.0, 2.0),
               f'{path}.max_padded_size_ratio')
  for a, b in zip(low, high):
    checks.value_range(a, b, path, 'min_padded_size_ratio',
                       'max_padded_size_ratio', strict_minimum=True)
  kwargs.update(min_padded_size_ratio=low, max_padded_size_ratio=high,
                pad_color=checks.pad_color(step.pad_color, path))
  return kwargs


def _pad_kwargs(step, path):
  kwargs = {'pad_color': checks.pad_color(step.pad_color, path)}
  for bound in ('min', 'max'):
    height = step.HasField(f'{bound}_image_height')
    width = step.HasField(f'{bound}_image_width')
    checks.require(height == width, f'{path}.{bound}_image_height',
                   f'set {bound}_image_height and {bound}_image_width '
                   'together (or neither).')
    if height:
      size = (getattr(step, f'{bound}_image_height'),
              getattr(step, f'{bound}_image_width'))
      checks.require(min(size) >= 1, f'{path}.{bound}_image_height',
                     f'must be >= 1, got {size}.')
      kwargs[f'{bound}_image_size'] = size
  return kwargs


def _crop_to_aspect_ratio_kwargs(step, path):
  checks.require(step.aspect_ratio > 0, f'{path}.aspect_ratio',
                 f'must be > 0, got {step.aspect_ratio}.')
  return {'aspect_ratio': step.aspect_ratio,
          'overlap_thresh': checks.probability(step.overlap_thresh,
                                               f'{path}.overlap_thresh'),
          'clip_boxes': step.clip_boxes}


def _normalize_kwargs(step, path):
  for name in ('original_minval', 'original_maxval'):
    checks.require(step.HasField(name), f'{path}.{name}', 'must be set.')
  checks.require(step.original_maxval > step.original_minval,
                 f'{path}.original_maxval', 'must exceed original_minval.')
  return {'original_minval': step.original_minval,
          'original_maxval': step.original_maxval,
          'target_minval': step.target_minval,
          'target_maxval': step.target_maxval}


def _pixel_scale_kwargs(step, path):
  checks.value_range(step.minval, step.maxval, path, 'minval', 'maxval')
  return {'minval': step.minval, 'maxval': step.maxval}


def _random_gray_kwargs(step, path):
  return {'probability': checks.probability(step.probability,
                                            f'{path}.probability')}


def _no_arguments(step, path):
  del step, path
  return {}


def _distort_color_kwargs(step, path):
  checks.require(step.color_ordering in (0, 1), f'{path}.color_ordering',
                 f'must be 0 or 1, got {step.color_ordering}.')
  return {'color_ordering': step.color_ordering}


def _black_patches_kwargs(step, path):
  checks.require(step.max_black_patches >= 0, f'{path}.max_black_patches',
                 f'must be >= 0, got {step.max_black_patches}.')
  checks.require(0.0 <= step.size_to_image_ratio < 1.0,
                 f'{path}.size_to_image_ratio',
                 f'must be in [0, 1), got {step.size_to_image_ratio}.')
  return {'max_black_patches': step.max_black_patches,
          'probability': checks.probability(step.probability,
                                            f'{path}.probability'),
          'size_to_image_ratio': step.size_to_image_ratio}


def _resize_method_kwargs(step, path):
  return {'target_height': _positive(step.target_height,
                                     f'{path}.target_height'),
          'target_width': _positive(step.target_width,
                                    f'{path}.target_width')}


def _resize_image_kwargs(step, path):
  return {'new_height': _positive(step.new_height, f'{path}.new_height'),
          'new_width': _positive(step.new_width, f'{path}.new_width'),
          'method': _RESIZE_METHODS[step.method]}


def _channel_mean_kwargs(step, path):
  checks.require(len(step.means) == 3, f'{path}.means',
                 f'needs 3 values (R, G, B), got {len(step.means)}.')
  return {'means': list(step.means)}


def _self_concat_kwargs(step, path):
  return {'concat_vertical_probability': checks.probability(
              step.concat_vertical_probability,
              f'{path}.concat_vertical_probability'),
          'concat_horizontal_probability': checks.probability(
              step.concat_horizontal_probability,
              f'{path}.concat_horizontal_probability')}


def _drop_label_kwargs(step, path):
  checks.require(step.label >= 1, f'{path}.label',
                 f'must be a 1-based label id, got {step.label}.')
  return {'label': step.label,
          'drop_probability': checks.probability(
              step.drop_probability, f'{path}.drop_probability')}


def _remap_kwargs(step, path):
  checks.require(len(step.original_labels) > 0, f'{path}.original_labels',
                 'must list at least one label.')
  checks.require(step.new_label >= 1, f'{path}.new_label',
                 f'must be a 1-based label id, got {step.new_label}.')
  return {'original_labels': list(step.original_labels),
          'new_label': step.new_label}


def _jpeg_kwargs(step, path):
  checks.require(0 <= step.min_jpeg_quality < step.max_jpeg_quality <= 100,
                 f'{path}', 'needs 0 <= min_jpeg_quality < max_jpeg_quality '
                 f'<= 100, got {step.min_jpeg_quality} and '
                 f'{step.max_jpeg_quality}.')
  return {'min_jpeg_quality': step.min_jpeg_quality,
          'max_jpeg_quality': step.max_jpeg_quality,
          'random_coef': checks.probability(step.random_coef,
                                            f'{path}.random_coef')}


def _downscale_kwargs(step, path):
  checks.require(0 < step.min_target_pixels < step.max_target_pixels, path,
                 'needs 0 < min_target_pixels < max_target_pixels, got '
                 f'{step.min_target_pixels} and {step.max_target_pixels}.')
  return {'min_target_pixels': step.min_target_pixels,
          'max_target_pixels': step.max_target_pixels,
          'random_coef': checks.probability(step.random_coef,
                                            f'{path}.random_coef')}


def _patch_gaussian_kwargs(step, path):
  checks.require(1 <= step.min_patch_size < step.max_patch_size, path,
                 'needs 1 <= min_patch_size < max_patch_size, got '
                 f'{step.min_patch_size} and {step.max_patch_size}.')
  checks.value_range(step.min_gaussian_stddev, step.max_gaussian_stddev,
                     path, 'min_gaussian_stddev', 'max_gaussian_stddev')
  return {'min_patch_size': step.min_patch_size,
          'max_patch_size': step.max_patch_size,
          'min_gaussian_stddev': step.min_gaussian_stddev,
          'max_gaussian_stddev': step.max_gaussian_stddev,
          'random_coef': checks.probability(step.random_coef,
                                            f'{path}.random_coef')}


def _gamma_kwargs(step, path):
  checks.require(step.gamma >= 0, f'{path}.gamma',
                 f'must be >= 0, got {step.gamma}.')
  return {'gamma': step.gamma, 'gain': step.gain}


# oneof field name -> (step function, proto -> kwargs).
STEPS = {
    'normalize_image': (pixels.normalize_image, _normalize_kwargs),
    'random_pixel_value_scale': (pixels.random_pixel_value_scale,
                                 _pixel_scale_kwargs),
    'random_rgb_to_gray': (pixels.random_rgb_to_gray, _random_gray_kwargs),
    'random_distort_color': (pixels.random_distort_color,
                             _distort_color_kwargs),
    'random_crop_image': (box_crops.random_crop_image, _crop_kwargs),
    'random_pad_image': (geometric.random_pad_image, _pad_kwargs),
    'random_crop_pad_image': (box_crops.random_crop_pad_image,
                              _crop_pad_kwargs),
    'random_crop_to_aspect_ratio': (box_crops.random_crop_to_aspect_ratio,
                                    _crop_to_aspect_ratio_kwargs),
    'random_black_patches': (pixels.random_black_patches,
                             _black_patches_kwargs),
    'random_resize_method': (resizing.random_resize_method,
                             _resize_method_kwargs),
    'resize_image': (resizing.resize_image, _resize_image_kwargs),
    'subtract_channel_mean': (pixels.subtract_channel_mean,
                              _channel_mean_kwargs),
    'rgb_to_gray': (pixels.rgb_to_gray, _no_arguments),
    'random_self_concat_image': (resizing.random_self_concat_image,
                                 _self_concat_kwargs),
    'drop_label_probabilistically': (labels.drop_label_probabilistically,
                                     _drop_label_kwargs),
    'remap_labels': (labels.remap_labels, _remap_kwargs),
    'random_jpeg_quality': (pixels.random_jpeg_quality, _jpeg_kwargs),
    'random_downscale_to_target_pixels': (
        resizing.random_downscale_to_target_pixels, _downscale_kwargs),
    'random_patch_gaussian': (pixels.random_patch_gaussian,
                              _patch_gaussian_kwargs),
    'adjust_gamma': (pixels.adjust_gamma, _gamma_kwargs),
}

_SSD = 'an SSD-specific crop; deepmac_tf has no SSD meta-architecture'
# Steps of the OD API schema that deepmac_tf does not implement, and why.
UNSUPPORTED_STEPS = {
    'scale_boxes_to_pixel_coordinates': (
        'deepmac_tf models take boxes normalized to the image'),
    'ssd_random_crop': _SSD,
    'ssd_random_crop_pad': _SSD,
    'ssd_random_crop_fixed_aspect_ratio': _SSD,
    'ssd_random_crop_pad_fixed_aspect_ratio': _SSD,
    'convert_class_logits_to_softmax': (
        'it needs multiclass-score groundtruth, which deepmac_tf inputs do '
        'not carry'),
    'autoaugment_image': (
        'AutoAugment detection policies are not implemented'),
}
