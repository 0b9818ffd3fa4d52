"""Pipeline config loading, overrides, errors and round trips."""

import glob
import os

import pytest

from deepmac_tf import config
from deepmac_tf.config import validation
from deepmac_tf.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_CONFIGS = sorted(glob.glob(os.path.join(REPO, 'configs', '*.config')))

# An OD API-era Deep-MAC config, with the old color_consistency_* spellings and
# the "fine_tune" checkpoint type, exactly as such files were written.
ODAPI_STYLE_CONFIG = """\
# Deep-MAC config written for the TF Object Detection API.
model {
  center_net {
    num_classes: 90
    feature_extractor {
      type: "hourglass_104"
      bgr_ordering: true
      channel_means: [104.01362025, 114.03422265, 119.9165958]
      channel_stds: [73.6027665, 69.89082075, 70.9150767]
    }
    image_resizer {
      keep_aspect_ratio_resizer {
        min_dimension: 512
        max_dimension: 512
        pad_to_max_dimension: true
      }
    }
    object_detection_task {
      task_loss_weight: 1.0
      offset_loss_weight: 1.0
      scale_loss_weight: 0.1
      localization_loss {
        l1_localization_loss {
        }
      }
    }
    object_center_params {
      object_center_loss_weight: 1.0
      min_box_overlap_iou: 0.7
      max_box_predictions: 100
      classification_loss {
        penalty_reduced_logistic_focal_loss {
          alpha: 2.0
          beta: 4.0
        }
      }
    }
    deepmac_mask_estimation {
      dim: 32
      task_loss_weight: 5.0
      pixel_embedding_dim: 16
      mask_size: 32
      use_xy: true
      use_instance_embedding: true
      network_type: "hourglass52"
      use_only_last_stage: true
      color_consistency_threshold: 0.3
      color_consistency_dilation: 2
      color_consistency_loss_weight: 0.5
      color_consistency_warmup_steps: 100
      color_consistency_warmup_start: 10
      max_roi_jitter_ratio: 0.05
      jitter_mode: EXPAND_SYMMETRIC_XY
      classification_loss {
        weighted_sigmoid {}
      }
      allowed_masked_classes_ids: [1, 2, 3, 4, 5, 6, 7, 9, 16, 17, 18, 19, 20,
        21, 44, 62, 63, 64, 67, 72]
    }
  }
}
train_config: {
  batch_size: 128
  num_steps: 50000
  data_augmentation_options {
    random_horizontal_flip {
    }
  }
  data_augmentation_options {
    random_square_crop_by_scale {
      scale_min: 0.6
      scale_max: 1.3
    }
  }
  optimizer {
    adam_optimizer: {
      epsilon: 1e-7
      learning_rate: {
        cosine_decay_learning_rate {
          learning_rate_base: 1e-3
          total_steps: 50000
          warmup_learning_rate: 2.5e-4
          warmup_steps: 5000
        }
      }
    }
    use_moving_average: false
  }
  max_number_of_boxes: 100
  unpad_groundtruth_tensors: false
  fine_tune_checkpoint_version: V2
  fine_tune_checkpoint: "PATH_TO_BE_CONFIGURED/ckpt-51"
  fine_tune_checkpoint_type: "fine_tune"
}
train_input_reader: {
  load_instance_masks: true
  label_map_path: "PATH_TO_BE_CONFIGURED/label_map.txt"
  mask_type: PNG_MASKS
  tf_record_input_reader {
    input_path: "PATH_TO_BE_CONFIGURED/train2017-?????-of-00256.tfrecord"
  }
}
eval_config: {
  metrics_set: "coco_detection_metrics"
  metrics_set: "coco_mask_metrics"
  include_metrics_per_category: true
  use_moving_averages: false
  batch_size: 1
  super_categories {
    key: "VOC"
    value: "person,bicycle,car"
  }
  super_categories {
    key: "NonVOC"
    value: "truck,traffic light"
  }
}
eval_input_reader: {
  load_instance_masks: true
  mask_type: PNG_MASKS
  label_map_path: "PATH_TO_BE_CONFIGURED/label_map.txt"
  shuffle: false
  num_epochs: 1
  tf_record_input_reader {
    input_path: "PATH_TO_BE_CONFIGURED/val2017-?????-of-00032.tfrecord"
  }
}
"""


def _write(tmp_path, text, name='pipeline.config'):
  path = tmp_path / name
  path.write_text(text)
  return str(path)


def test_odapi_style_config_loads_unchanged(tmp_path):
  path = _write(tmp_path, ODAPI_STYLE_CONFIG)
  configs = config.get_configs_from_pipeline_file(path)
  assert set(configs) == {'model', 'train_config', 'train_input_config',
                          'eval_config', 'eval_input_configs'}
  deepmac = configs['model'].center_net.deepmac_mask_estimation
  assert deepmac.network_type == 'hourglass52'
  assert deepmac.use_only_last_stage
  assert list(deepmac.allowed_masked_classes_ids)[:3] == [1, 2, 3]
  # Old spellings land in the renamed fields.
  assert deepmac.feature_consistency_threshold == pytest.approx(0.3)
  assert deepmac.feature_consistency_dilation == 2
  assert deepmac.feature_consistency_loss_weight == pytest.approx(0.5)
  assert deepmac.feature_consistency_warmup_steps == 100
  assert deepmac.feature_consistency_warmup_start == 10
  assert configs['train_config'].batch_size == 128
  assert len(configs['train_config'].data_augmentation_options) == 2
  lr = configs['train_config'].optimizer.adam_optimizer.learning_rate
  assert lr.cosine_decay_learning_rate.warmup_steps == 5000
  assert configs['train_input_config'].mask_type == 2  # PNG_MASKS
  assert isinstance(configs['eval_input_configs'], list)
  assert configs['eval_input_configs'][0].num_epochs == 1
  assert dict(configs['eval_config'].super_categories)['VOC'].startswith(
      'person')


def test_new_spelling_loads_too(tmp_path):
  text = ODAPI_STYLE_CONFIG.replace('color_consistency_', 'feature_consistency_')
  configs = config.get_configs_from_pipeline_file(_write(tmp_path, text))
  deepmac = configs['model'].center_net.deepmac_mask_estimation
  assert deepmac.feature_consistency_loss_weight == pytest.approx(0.5)


@pytest.mark.parametrize('path', SAMPLE_CONFIGS,
                         ids=[os.path.basename(p) for p in SAMPLE_CONFIGS])
def test_sample_configs_load(path):
  configs = config.get_configs_from_pipeline_file(path)
  name, _ = config.get_model_message(configs['model'])
  assert name in ('center_net', 'faster_rcnn')


def test_typo_names_file_line_column_and_field(tmp_path):
  text = ODAPI_STYLE_CONFIG.replace('      mask_size: 32',
                                    '      mask_sise: 32')
  path = _write(tmp_path, text)
  line = text.split('\n').index('      mask_sise: 32') + 1
  with pytest.raises(ConfigError) as info:
    config.get_configs_from_pipeline_file(path)
  message = str(info.value)
  assert message.startswith(f'{path}:{line}:7: ')
  assert 'unknown field "mask_sise"' in message
  assert 'CenterNet.DeepMACMaskEstimation' in message
  assert 'did you mean "mask_size"' in message
  assert '\n' not in message


def test_column_maps_back_through_legacy_renames(tmp_path):
  text = ('model { center_net { deepmac_mask_estimation { '
          'color_consistency_threshold: 0.3 bogus: 1 } } }')
  path = _write(tmp_path, text)
  with pytest.raises(ConfigError) as info:
    config.get_configs_from_pipeline_file(path)
  assert str(info.value).startswith(f'{path}:1:{text.index("bogus") + 1}: ')


@pytest.mark.parametrize('text,expected', [
    ('model { center_net { num_classes: 3.5 } }', "Couldn't parse integer"),
    ('model { center_net { num_classes: 3 }', 'Expected "}"'),
    ('model { center_net { deepmac_mask_estimation { jitter_mode: WIDER } } }',
     'unknown value WIDER for enum RandomJitterBoxes.JitterMode'),
    ('train_input_reader { mask_type: PNG }',
     'expected one of DEFAULT, NUMERICAL_MASKS, PNG_MASKS'),
    ('model { ssd { } }', 'meta-architecture SSD / EfficientDet (model { ssd '
     '{ } }) is supported by the OD API, not by deepmac_tf'),
    ('model { center_nett { } }',
     'unknown field "center_nett" in DetectionModel (did you mean '
     '"center_net"?)'),
])
def test_syntax_errors_are_one_located_line(tmp_path, text, expected):
  path = _write(tmp_path, text)
  with pytest.raises(ConfigError) as info:
    config.get_configs_from_pipeline_file(path)
  assert str(info.value).startswith(f'{path}:1:')
  assert expected in str(info.value)
  assert '\n' not in str(info.value)


def test_override_merges_into_file(tmp_path):
  path = _write(tmp_path, ODAPI_STYLE_CONFIG)
  configs = config.get_configs_from_pipeline_file(
      path, config_override='train_config { batch_size: 4 num_steps: 10 } '
      'model { center_net { deepmac_mask_estimation { '
      'network_type: "resnet4" } } }')
  assert configs['train_config'].batch_size == 4
  assert configs['train_config'].num_steps == 10
  deepmac = configs['model'].center_net.deepmac_mask_estimation
  assert deepmac.network_type == 'resnet4'
  assert deepmac.mask_size == 32  # Untouched fields stay.


def test_override_error_names_override(tmp_path):
  path = _write(tmp_path, ODAPI_STYLE_CONFIG)
  with pytest.raises(ConfigError, match=r'^config_override:1:16: unknown '
                     r'field "batch_sz"'):
    config.get_configs_from_pipeline_file(
        path, config_override='train_config { batch_sz: 4 }')


def test_missing_file_is_clear(tmp_path):
  with pytest.raises(ConfigError, match='Pipeline config not found'):
    config.get_configs_from_pipeline_file(str(tmp_path / 'nope.config'))
  with pytest.raises(ConfigError, match='is a directory'):
    config.get_configs_from_pipeline_file(str(tmp_path))


def test_round_trip_through_dict_and_save(tmp_path):
  path = _write(tmp_path, ODAPI_STYLE_CONFIG)
  configs = config.get_configs_from_pipeline_file(path)
  pipeline = config.create_pipeline_proto_from_configs(configs)
  saved = config.save_pipeline_config(pipeline, str(tmp_path / 'out'))
  assert saved == str(tmp_path / 'out' / 'pipeline.config')
  reloaded = config.get_pipeline_config_from_file(saved)
  assert reloaded == pipeline
  # Saved configs use the newest spelling.
  text = open(saved).read()
  assert 'feature_consistency_threshold' in text
  assert 'color_consistency' not in text


def test_loading_never_touches_paths_inside(tmp_path, monkeypatch):
  """Placeholders load: only the config file itself is opened."""
  opened = []
  real_open = open

  def tracking_open(file, *args, **kwargs):
    opened.append(str(file))
    return real_open(file, *args, **kwargs)

  path = _write(tmp_path, ODAPI_STYLE_CONFIG)
  monkeypatch.setattr('builtins.open', tracking_open)
  config.get_configs_from_pipeline_file(path)
  assert opened == [path]


def test_model_helpers(tmp_path):
  configs = config.get_configs_from_pipeline_file(
      _write(tmp_path, ODAPI_STYLE_CONFIG))
  assert config.get_number_of_classes(configs['model']) == 90
  resizer = config.get_image_resizer_config(configs['model'])
  assert resizer.keep_aspect_ratio_resizer.max_dimension == 512
  empty = config.get_pipeline_config_from_text('')
  with pytest.raises(ConfigError, match='no architecture set'):
    config.get_model_message(empty.model)


def test_faster_rcnn_mask_rcnn_config_loads():
  text = """
  model {
    faster_rcnn {
      number_of_stages: 3
      num_classes: 90
      image_resizer { fixed_shape_resizer { height: 1024 width: 1024 } }
      feature_extractor {
        type: 'faster_rcnn_resnet50_fpn_keras'
        fpn { min_level: 2 max_level: 6 }
        conv_hyperparams {
          activation: RELU_6
          regularizer { l2_regularizer { weight: 0.0004 } }
          initializer { truncated_normal_initializer { stddev: 0.03 } }
          sync_batch_norm { scale: true decay: 0.997 epsilon: 0.001 }
        }
      }
      first_stage_anchor_generator {
        multiscale_anchor_generator {
          min_level: 2 max_level: 6 anchor_scale: 8.0
          aspect_ratios: [0.5, 1.0, 2.0] scales_per_octave: 1
        }
      }
      first_stage_max_proposals: 300
      initial_crop_size: 14
      maxpool_kernel_size: 2
      maxpool_stride: 2
      second_stage_box_predictor {
        mask_rcnn_box_predictor {
          predict_instance_masks: true
          mask_height: 33
          mask_width: 33
          masks_are_class_agnostic: true
        }
      }
      second_stage_post_processing {
        batch_non_max_suppression {
          score_threshold: 0.0 iou_threshold: 0.6
          max_detections_per_class: 100 max_total_detections: 100
        }
        score_converter: SOFTMAX
      }
    }
  }
  """
  pipeline = config.get_pipeline_config_from_text(text)
  name, frcnn = config.get_model_message(pipeline.model)
  assert name == 'faster_rcnn'
  predictor = frcnn.second_stage_box_predictor.mask_rcnn_box_predictor
  assert predictor.mask_height == 33 and predictor.masks_are_class_agnostic


def test_validation_catches_semantic_errors(tmp_path):
  configs = config.get_configs_from_pipeline_file(
      _write(tmp_path, ODAPI_STYLE_CONFIG))
  with pytest.raises(ConfigError, match=r'train_input_reader\.label_map_path.*'
                     'PATH_TO_BE_CONFIGURED'):
    configs['train_input_config'].tf_record_input_reader.input_path[:] = [
        '/data/x.record']
    validation.validate_input_reader(configs['train_input_config'],
                                     'train_input_reader')
  configs['train_input_config'].label_map_path = '/data/label_map.pbtxt'
  configs['train_input_config'].load_instance_masks = False
  with pytest.raises(ConfigError, match='load_instance_masks: must be true'):
    validation.validate_input_reader(configs['train_input_config'],
                                     'train_input_reader', require_masks=True)
