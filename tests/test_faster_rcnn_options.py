"""OD API Faster R-CNN options (issue 13): grid anchors against hand-computed
boxes, the Hyperparams mapping, layer hyperparameters reaching Keras layers,
and the table that accounts for every FasterRcnn field."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from google.protobuf import text_format

from deepmac_tf.builders import faster_rcnn_options
from deepmac_tf.builders import hyperparams_builder
from deepmac_tf.errors import ConfigError
from deepmac_tf.layers import layer_hyperparams
from deepmac_tf.meta_architectures import mask_rcnn_params as params_lib
from deepmac_tf.meta_architectures import mask_rcnn_targets
from deepmac_tf.protos import center_net_pb2
from deepmac_tf.protos import eval_pb2
from deepmac_tf.protos import faster_rcnn_pb2
from deepmac_tf.protos import hyperparams_pb2
from deepmac_tf.protos import image_resizer_pb2
from deepmac_tf.protos import input_reader_pb2
from deepmac_tf.protos import model_pb2
from deepmac_tf.protos import pipeline_pb2
from deepmac_tf.protos import train_pb2

GRID = params_lib.GridAnchorParams(scales=(1.0, 2.0), aspect_ratios=(1.0, 4.0),
                                   base_size=(16, 32), stride=(16, 16),
                                   offset=(8, 0))


def test_grid_anchors_match_hand_computed_boxes():
  anchors = mask_rcnn_targets.grid_anchor_boxes(GRID, 32, 40).numpy()
  # 2 x 3 cells (ceil(40 / 16) = 3), 4 anchors: (a=1, s=1), (a=1, s=2),
  # (a=4, s=1), (a=4, s=2): heights 16 s / sqrt(a), widths 32 s sqrt(a).
  assert anchors.shape == (2, 3, 16)
  cell = anchors[1, 2].reshape(4, 4)
  yc, xc = 1 * 16 + 8, 2 * 16 + 0
  expected = [[yc - 8, xc - 16, yc + 8, xc + 16],
              [yc - 16, xc - 32, yc + 16, xc + 32],
              [yc - 4, xc - 32, yc + 4, xc + 32],
              [yc - 8, xc - 64, yc + 8, xc + 64]]
  np.testing.assert_allclose(cell, expected)
  np.testing.assert_allclose(anchors[0, 0, :4], [0, -16, 16, 16])


def test_clip_anchors_to_image():
  params = params_lib.MaskRCNNParams(num_classes=2, min_level=4, max_level=4,
                                     grid_anchors=GRID,
                                     clip_anchors_to_image=True)
  anchors = mask_rcnn_targets.anchor_boxes(params, 32, 40)['4'].numpy()
  np.testing.assert_allclose(anchors[1, 2, 8:12], [20, 0, 28, 40])
  assert anchors.min() >= 0 and anchors[..., 1::2].max() <= 40


def _hyperparams(text):
  return text_format.Parse(text, hyperparams_pb2.Hyperparams())


def test_hyperparams_map_to_layer_settings():
  hp = hyperparams_builder.from_proto(_hyperparams('''
      activation: RELU_6
      initializer { truncated_normal_initializer { stddev: 0.03 } }
      batch_norm { decay: 0.97 epsilon: 0.001 scale: true train: false }'''),
                                      'f', batch_norm_trainable=True)
  assert hp.activation == 'relu6'
  assert (hp.batch_norm_momentum, hp.batch_norm_epsilon) == (
      pytest.approx(0.97), pytest.approx(0.001))
  assert hp.batch_norm_scale and hp.batch_norm_center
  assert not hp.batch_norm_trainable
  assert hp.initializer().get_config()['stddev'] == pytest.approx(0.03)
  vs = hyperparams_builder.from_proto(_hyperparams('''
      op: FC initializer { variance_scaling_initializer {
        factor: 1.0 uniform: true mode: FAN_AVG } }'''), 'g',
                                      op=hyperparams_pb2.Hyperparams.FC)
  assert vs.kernel_initializer['config'] == {
      'scale': 1.0, 'mode': 'fan_avg', 'distribution': 'uniform'}
  assert not vs.batch_norm
  assert hyperparams_builder.from_proto(_hyperparams(
      'activation: NONE'), 'h').activation_fn() is tf.identity
  by_name = hyperparams_builder.from_proto(_hyperparams(
      'initializer { keras_initializer_by_name: "he_normal" }'), 'k')
  assert isinstance(by_name.initializer(), tf_keras.initializers.HeNormal)


@pytest.mark.parametrize('text,match', [
    ('op: FC', r'^f\.op: FC here configures CONV layers'),
    ('group_norm {}', r'^f\.group_norm: supported by the OD API, not by'),
    ('batch_norm { decay: 1.5 }', r'^f\.batch_norm: decay must be'),
    ('initializer { variance_scaling_initializer { factor: 0 } }',
     r'^f\.initializer\.variance_scaling_initializer\.factor'),
    ('initializer { keras_initializer_by_name: "nope" }',
     r"^f\.initializer\.keras_initializer_by_name: 'nope' is not a tf_keras "
     'initializer name'),
])
def test_bad_hyperparams_name_the_field(text, match):
  with pytest.raises(ConfigError, match=match):
    hyperparams_builder.from_proto(_hyperparams(text), 'f')


def test_apply_to_layer_sets_and_redraws_initializers():
  hp = layer_hyperparams.LayerHyperparams(
      kernel_initializer={'class_name': 'RandomNormal',
                          'config': {'mean': 0.0, 'stddev': 0.5}},
      batch_norm_scale=False)
  built = tf_keras.layers.Conv2D(64, 3)
  built.build([None, 8, 8, 64])
  unbuilt = tf_keras.layers.Dense(256)
  norm = tf_keras.layers.BatchNormalization()
  container = tf_keras.Sequential([unbuilt, norm])
  layer_hyperparams.apply_to_layer(built, hp)
  layer_hyperparams.apply_to_layer(container, hp)
  unbuilt.build([None, 256])
  norm.build([None, 256])
  for kernel in (built.kernel, unbuilt.kernel):
    assert float(tf.math.reduce_std(kernel)) == pytest.approx(0.5, rel=0.05)
  assert norm.gamma is None  # scale: false


def test_frozen_batch_norm_ignores_training():
  norm = layer_hyperparams.LayerHyperparams(
      batch_norm_trainable=False).batch_norm_layer('bn')
  x = tf.random.normal([4, 3]) * 5 + 2
  out = norm(x, training=True)
  np.testing.assert_allclose(out, x / np.sqrt(1 + norm.epsilon), rtol=1e-5)
  assert not norm.trainable_weights
  np.testing.assert_allclose(norm.moving_mean, 0.0)


def _reachable(message_descriptor, seen):
  """Every message reachable from ``message_descriptor`` through fields not
  refused as a whole (a refused message field is refused when set at all);
  map entries count as their map field."""
  if (message_descriptor.full_name in seen or
      message_descriptor.GetOptions().map_entry):
    return seen
  seen[message_descriptor.full_name] = message_descriptor
  table = faster_rcnn_options.FIELD_HANDLING.get(message_descriptor.name, {})
  for field in message_descriptor.fields:
    if field.message_type is not None and table.get(field.name) != 'refused':
      _reachable(field.message_type, seen)
  return seen


# Every message a pipeline config can hold (and be built from).
_REACHABLE = _reachable(pipeline_pb2.TrainEvalPipelineConfig.DESCRIPTOR, {})


def test_the_walk_reaches_every_part_of_the_pipeline():
  names = {d.name for d in _REACHABLE.values()}
  assert {'TrainEvalPipelineConfig', 'DetectionModel', 'FasterRcnn',
          'CenterNet', 'Hyperparams', 'BatchNonMaxSuppression',
          'ClassificationLoss', 'LocalizationLoss', 'AnchorGenerator',
          'InputReader', 'Optimizer', 'DeepMarcMaskHead',
          'PreprocessingStep'} <= names
  # Refused as a whole: not walked.
  assert 'KeypointEstimation' not in names


@pytest.mark.parametrize('message', sorted(_REACHABLE.values(),
                                           key=lambda d: d.full_name),
                         ids=lambda d: d.full_name.split('.', 2)[-1])
def test_every_field_is_accounted_for(message):
  """A new field must be honoured, logged as having no effect, or refused:
  add it to faster_rcnn_options.FIELD_HANDLING with its handling."""
  descriptor = message
  table = faster_rcnn_options.FIELD_HANDLING[descriptor.name]
  assert set(table) == {f.name for f in descriptor.fields}
  for name, handling in table.items():
    assert handling in (faster_rcnn_options.HONOURED, 'no effect',
                        'only default', 'refused')
    if handling == 'no effect':
      assert name in faster_rcnn_options.NO_EFFECT
    elif handling == 'only default':
      assert name in faster_rcnn_options.ONLY_DEFAULT
    elif handling == 'refused':
      assert name in faster_rcnn_options.REFUSED_BY[descriptor.name]


def _set(message, name, avoid=None):
  """Sets field ``name`` of ``message`` to a value other than ``avoid``
  (default: the field's default)."""
  field = message.DESCRIPTOR.fields_by_name[name]
  avoid = field.default_value if avoid is None else avoid
  if field.message_type is not None:
    if field.is_repeated:
      getattr(message, name).add()
    else:
      getattr(message, name).SetInParent()
  elif field.is_repeated:
    getattr(message, name).append(1)
  elif field.enum_type is not None:
    setattr(message, name, next(v.number for v in field.enum_type.values
                                if v.number != avoid))
  elif field.type == field.TYPE_BOOL:
    setattr(message, name, not avoid)
  elif field.type == field.TYPE_STRING:
    setattr(message, name, 'x')
  else:
    setattr(message, name, avoid + 1)


_CHECKED_MESSAGES = {
    'model.center_net': center_net_pb2.CenterNet,
    'model.center_net.deepmac_mask_estimation':
        center_net_pb2.CenterNet.DeepMACMaskEstimation,
    'train_config': train_pb2.TrainConfig,
    'eval_config': eval_pb2.EvalConfig,
    'train_input_reader': input_reader_pb2.InputReader}


@pytest.mark.parametrize('path', sorted(_CHECKED_MESSAGES))
def test_no_effect_and_only_default_fields_log_or_refuse(path, caplog):
  """Every 'no effect' field set: one log line naming it; every 'only
  default' field set to another value: one ConfigError line naming it."""
  message_type = _CHECKED_MESSAGES[path]
  table = faster_rcnn_options.FIELD_HANDLING[message_type.DESCRIPTOR.name]
  message = message_type()
  no_effect = [n for n, h in table.items() if h == 'no effect']
  for name in no_effect:
    _set(message, name)
  with caplog.at_level('INFO', logger='absl'):
    faster_rcnn_options.check_fields(message, path)
  lines = [r.getMessage() for r in caplog.records]
  for name in no_effect:
    assert any(l.startswith(f'{path}.{name}: accepted, no effect here '
                            'because') for l in lines), name
  for name in (n for n, h in table.items() if h == 'only default'):
    wrong = message_type()
    _set(wrong, name, avoid=faster_rcnn_options.ONLY_DEFAULT[name][0])
    with pytest.raises(ConfigError, match=(
        rf'^{path}\.{name}: (only .* is supported|must be left unset) here '
        r'\(')) as info:
      faster_rcnn_options.check_fields(wrong, path)
    assert '\n' not in str(info.value)


_TINY_CENTER_NET = '''
    num_classes: 2 feature_extractor { type: "hourglass_10" }
    object_center_params { max_box_predictions: 5 }'''


@pytest.mark.parametrize('message, name', [
    (m, n) for m, fields in faster_rcnn_options.REFUSED_BY.items()
    if m in ('CenterNet', 'ObjectCenterParams', 'CenterNetFeatureExtractor')
    for n in fields])
def test_refused_center_net_fields_fail_at_build_naming_them(message, name):
  from deepmac_tf.builders import model_builder  # pylint: disable=g-import-not-at-top
  config = text_format.Parse(_TINY_CENTER_NET, center_net_pb2.CenterNet())
  part, path = {
      'CenterNet': (config, 'model.center_net'),
      'ObjectCenterParams': (config.object_center_params,
                             'model.center_net.object_center_params'),
      'CenterNetFeatureExtractor': (
          config.feature_extractor, 'model.center_net.feature_extractor'),
  }[message]
  _set(part, name)
  model = model_pb2.DetectionModel()
  model.center_net.CopyFrom(config)
  with pytest.raises(ConfigError, match=rf'^{path}\.{name}: ') as info:
    model_builder.build(model, is_training=True)
  assert '\n' not in str(info.value)


@pytest.mark.parametrize('name', sorted(
    faster_rcnn_options.REFUSED_BY['EvalConfig']))
def test_refused_eval_fields_fail_when_evaluation_starts(name):
  from deepmac_tf.evaluation import eval_setup  # pylint: disable=g-import-not-at-top
  eval_config = eval_pb2.EvalConfig()
  _set(eval_config, name)
  with pytest.raises(ConfigError, match=rf'^eval_config\.{name}: '):
    eval_setup.metrics_sets({'eval_config': eval_config})


def test_no_effect_fields_log_one_line_each(caplog):
  config = text_format.Parse('''
      num_classes: 3 use_static_shapes: true use_matmul_crop_and_resize: true
      first_stage_atrous_rate: 1''', faster_rcnn_pb2.FasterRcnn())
  # The absl logger's own level (another test may have quietened it).
  with caplog.at_level('INFO', logger='absl'):
    faster_rcnn_options.check_options(config)
  lines = [r.getMessage() for r in caplog.records]
  assert any(l.startswith('model.faster_rcnn.use_static_shapes: accepted, no '
                          'effect here because') for l in lines)
  assert any('use_matmul_crop_and_resize' in l for l in lines)
  config.first_stage_atrous_rate = 2
  with pytest.raises(ConfigError, match=(
      r'^model\.faster_rcnn\.first_stage_atrous_rate: only 1 is supported')):
    faster_rcnn_options.check_options(config)


def test_unscaled_batch_norm_on_model_garden_layers_names_the_field():
  config = text_format.Parse('''
      num_classes: 3
      feature_extractor { type: "faster_rcnn_resnet50_fpn_keras"
        fpn { min_level: 2 max_level: 6 }
        conv_hyperparams { batch_norm { scale: false } } }''',
                             faster_rcnn_pb2.FasterRcnn())
  with pytest.raises(ConfigError, match=(
      r'^model\.faster_rcnn\.feature_extractor\.conv_hyperparams\.batch_norm: '
      'center and scale must be true')):
    faster_rcnn_options.hyperparams_kwargs(config, False, 0.997, 1e-4)


def test_inference_proposals_default_to_the_training_number():
  from deepmac_tf.builders import mask_rcnn_builder  # pylint: disable=g-import-not-at-top
  config = text_format.Parse('''
      num_classes: 3 first_stage_max_proposals: 300
      feature_extractor { type: "faster_rcnn_resnet50_keras" }''',
                             faster_rcnn_pb2.FasterRcnn())
  params = mask_rcnn_builder.params_from_proto(config)
  assert (params.rpn_num_proposals, params.rpn_test_num_proposals) == (300,
                                                                       300)
  config.first_stage_max_proposals_eval = 1000
  assert mask_rcnn_builder.params_from_proto(
      config).rpn_test_num_proposals == 1000


@pytest.mark.parametrize('kind', sorted(
    faster_rcnn_options.REFUSED_BY['ImageResizer']))
def test_refused_resizers_fail_in_one_line(kind):
  from deepmac_tf.data import image_resizer  # pylint: disable=g-import-not-at-top
  config = image_resizer_pb2.ImageResizer()
  getattr(config, kind).SetInParent()
  with pytest.raises(ConfigError, match=(
      rf'^model\.center_net\.image_resizer\.{kind}: supported by the OD '
      'API, not by deepmac_tf')) as info:
    image_resizer.build(config, 'model.center_net.image_resizer')
  assert '\n' not in str(info.value)


@pytest.mark.parametrize('name', sorted(
    faster_rcnn_options.REFUSED_BY['DeepMACMaskEstimation']))
def test_refused_deepmac_fields_name_the_field(name):
  from deepmac_tf.builders import deepmac_builder  # pylint: disable=g-import-not-at-top
  config = center_net_pb2.CenterNet.DeepMACMaskEstimation()
  config.classification_loss.weighted_sigmoid.SetInParent()
  setattr(config, name, 4)  # > 0: a weak loss / subsampling asked for.
  with pytest.raises(ConfigError, match=(
      rf'^model\.center_net\.deepmac_mask_estimation\.{name}: ')):
    deepmac_builder.deepmac_params_from_proto(config)


def test_deepmac_fields_are_checked_at_model_build(caplog):
  """A no-effect Deep-MAC field is logged by model_builder.build (before
  the feature extractor, whose unknown type then stops the build)."""
  from deepmac_tf.builders import model_builder  # pylint: disable=g-import-not-at-top
  model = text_format.Parse(_TINY_CENTER_NET.replace('hourglass_10', 'nope'),
                            model_pb2.DetectionModel().center_net)
  model.deepmac_mask_estimation.feature_consistency_threshold = 0.3
  config = model_pb2.DetectionModel()
  config.center_net.CopyFrom(model)
  with caplog.at_level('INFO', logger='absl'), pytest.raises(ConfigError):
    model_builder.build(config, is_training=True)
  assert any(r.getMessage().startswith(
      'model.center_net.deepmac_mask_estimation.feature_consistency_'
      'threshold: accepted, no effect here because') for r in caplog.records)


def test_input_reader_fields_are_checked_at_dataset_build(caplog, tmp_path):
  """Before any file is opened: a no-effect field logs one line, a field
  the pipeline cannot honour is one ConfigError line naming it."""
  from deepmac_tf.builders import dataset_builder  # pylint: disable=g-import-not-at-top
  reader = text_format.Parse(f'''
      num_parallel_batches: 4 tf_record_input_reader {{
        input_path: "{tmp_path}/none-*.rec" }}''', input_reader_pb2.InputReader())
  resizer = text_format.Parse('identity_resizer {}',
                              image_resizer_pb2.ImageResizer())
  with caplog.at_level('INFO', logger='absl'), pytest.raises(
      ConfigError, match='matches no files'):
    dataset_builder.build(reader, 1, resizer, reader_name='train_input_reader')
  assert any(r.getMessage().startswith(
      'train_input_reader.num_parallel_batches: accepted, no effect here')
             for r in caplog.records)
  reader.num_additional_channels = 2
  with pytest.raises(ConfigError, match=(
      r'^eval_input_reader\[0\]\.num_additional_channels: only 0 is '
      r'supported here \(the models take 3-channel images\), got 2\.$')):
    dataset_builder.build(reader, 1, resizer,
                          reader_name='eval_input_reader[0]')


_PR = 'second_stage_post_processing'
_NMS = f'{_PR}.batch_non_max_suppression'


def _nms(text):
  return f'{_PR} {{ batch_non_max_suppression {{ {text} }} }}'

_FPN_FASTER_RCNN = '''
    num_classes: 3
    feature_extractor { type: "faster_rcnn_resnet50_fpn_keras"
      fpn { min_level: 3 max_level: 7 } }
    first_stage_anchor_generator { multiscale_anchor_generator {
      min_level: 3 max_level: 7 } }
    second_stage_post_processing { score_converter: SOFTMAX
      batch_non_max_suppression { max_total_detections: 10 } }'''


@pytest.mark.parametrize('text, field', [
    ('hard_example_miner { }', 'hard_example_miner'),
    ('use_combined_nms_in_first_stage: true',
     'use_combined_nms_in_first_stage'),
    (_nms('soft_nms_sigma: 0.5'), f'{_NMS}.soft_nms_sigma'),
    (_nms('use_combined_nms: true'), f'{_NMS}.use_combined_nms'),
    (_nms('change_coordinate_frame: false'),
     f'{_NMS}.change_coordinate_frame'),
    (_nms('use_class_agnostic_nms: true'),
     f'{_NMS}.use_class_agnostic_nms'),
    (_nms('max_classes_per_detection: 2'),
     f'{_NMS}.max_classes_per_detection'),
    (f'{_PR} {{ logit_scale: 2 }}', f'{_PR}.logit_scale'),
    (f'{_PR} {{ calibration_config {{ sigmoid_calibration {{ }} }} }}',
     f'{_PR}.calibration_config'),
    ('second_stage_classification_loss { weighted_softmax { logit_scale: 2 '
     '} }', 'second_stage_classification_loss.weighted_softmax.logit_scale'),
    ('second_stage_classification_loss { weighted_logits_softmax { } }',
     'second_stage_classification_loss'),
    ('feature_extractor { conv_hyperparams { group_norm { } } }',
     'feature_extractor.conv_hyperparams.group_norm'),
    ('feature_extractor { conv_hyperparams { regularizer { l1_regularizer '
     '{ } } } }', 'feature_extractor.conv_hyperparams.regularizer.'
     'l1_regularizer'),
])
def test_refused_faster_rcnn_parts_fail_at_build_naming_them(text, field):
  """The loss, NMS and layer-hyperparams refusals of FIELD_HANDLING fire
  when the Deep-MARC model is built (before any layer is made)."""
  from deepmac_tf.builders import mask_rcnn_builder  # pylint: disable=g-import-not-at-top
  config = text_format.Parse(_FPN_FASTER_RCNN, faster_rcnn_pb2.FasterRcnn())
  text_format.Merge(text, config)
  with pytest.raises(ConfigError, match=rf'^model\.faster_rcnn\.{field}: '
                     ) as info:
    mask_rcnn_builder.params_from_proto(config)
  assert '\n' not in str(info.value)


def test_no_effect_faster_rcnn_parts_log_one_line_each(caplog):
  from deepmac_tf.builders import mask_rcnn_builder  # pylint: disable=g-import-not-at-top
  config = text_format.Parse(_FPN_FASTER_RCNN, faster_rcnn_pb2.FasterRcnn())
  text_format.Merge(f'''
      first_stage_anchor_generator {{ multiscale_anchor_generator {{
        normalize_coordinates: false }} }}
      {_nms('use_static_shapes: true max_detections_per_class: 10 '
            'max_total_detections: 30 use_partitioned_nms: true '
            'use_hard_nms: true use_cpu_nms: true')}
      second_stage_classification_loss {{ weighted_softmax {{
        anchorwise_output: true }} }}
      feature_extractor {{ conv_hyperparams {{ regularize_depthwise: true
        batch_norm {{ scale: true }} }} }}''', config)
  with caplog.at_level('INFO', logger='absl'):
    params = mask_rcnn_builder.params_from_proto(config)
  assert (params.max_num_detections, params.max_detections_per_class) == (
      30, 10)
  lines = [r.getMessage() for r in caplog.records]
  # Honoured (ops.multiclass_nms), so not logged.
  assert not any(f'{_NMS}.max_detections_per_class' in l for l in lines)
  for field in ('first_stage_anchor_generator.multiscale_anchor_generator.'
                'normalize_coordinates', f'{_NMS}.use_static_shapes',
                f'{_NMS}.use_partitioned_nms', f'{_NMS}.use_hard_nms',
                f'{_NMS}.use_cpu_nms',
                'second_stage_classification_loss.weighted_softmax.'
                'anchorwise_output',
                'feature_extractor.conv_hyperparams.regularize_depthwise'):
    assert sum(l.startswith(f'model.faster_rcnn.{field}: accepted, no effect '
                            'here because') for l in lines) == 1, field


@pytest.mark.parametrize('part, text, field', [
    ('object_center_params', 'classification_loss { bootstrapped_sigmoid '
     '{ } }', 'object_center_params.classification_loss'),
    ('object_detection_task', 'localization_loss { weighted_smooth_l1 { } }',
     'object_detection_task.localization_loss'),
    ('deepmac_mask_estimation', 'classification_loss { '
     'weighted_sigmoid_focal { } }',
     'deepmac_mask_estimation.classification_loss'),
])
def test_refused_center_net_losses_fail_at_build_naming_them(part, text,
                                                             field):
  from deepmac_tf.builders import model_builder  # pylint: disable=g-import-not-at-top
  config = model_pb2.DetectionModel()
  text_format.Merge(_TINY_CENTER_NET, config.center_net)
  text_format.Merge(text, getattr(config.center_net, part))
  with pytest.raises(ConfigError, match=rf'^model\.center_net\.{field}: '):
    model_builder.build(config, is_training=True)


def test_deepmac_sigmoid_anchorwise_output_is_logged(caplog):
  from deepmac_tf.builders import model_builder  # pylint: disable=g-import-not-at-top
  config = model_pb2.DetectionModel()
  text_format.Merge(_TINY_CENTER_NET.replace('hourglass_10', 'nope'),
                    config.center_net)
  text_format.Merge('classification_loss { weighted_sigmoid { '
                    'anchorwise_output: true } }',
                    config.center_net.deepmac_mask_estimation)
  with caplog.at_level('INFO', logger='absl'), pytest.raises(ConfigError):
    model_builder.build(config, is_training=True)
  assert any(r.getMessage().startswith(
      'model.center_net.deepmac_mask_estimation.classification_loss.'
      'weighted_sigmoid.anchorwise_output: accepted, no effect here because')
             for r in caplog.records)


def test_unused_single_level_conv_hyperparams_add_no_weight_decay(caplog):
  """faster_rcnn_resnet*_keras without override: conv_hyperparams (and its
  regularizer) configure nothing, as in the OD API, and the log says so."""
  from deepmac_tf.builders import mask_rcnn_builder  # pylint: disable=g-import-not-at-top
  config = text_format.Parse('''
      num_classes: 3
      feature_extractor { type: "faster_rcnn_resnet50_keras"
        conv_hyperparams { regularizer { l2_regularizer { weight: 0.01 } } } }
      first_stage_box_predictor_conv_hyperparams {
        regularizer { l2_regularizer { weight: 0.02 } } }''',
                             faster_rcnn_pb2.FasterRcnn())
  with caplog.at_level('INFO', logger='absl'):
    params = mask_rcnn_builder.params_from_proto(config)
  assert dict(params.l2_weight_decay) == {'rpn': pytest.approx(0.02)}
  assert any(r.getMessage().startswith(
      'model.faster_rcnn.feature_extractor.conv_hyperparams: accepted, no '
      'effect here because') for r in caplog.records)
  config.feature_extractor.override_base_feature_extractor_hyperparams = True
  assert dict(mask_rcnn_builder.params_from_proto(config).l2_weight_decay) == {
      'backbone': pytest.approx(0.01), 'rpn': pytest.approx(0.02)}
