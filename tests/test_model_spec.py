"""Tests of config.model_spec: one answer to "which classes are seen / does
the model predict masks / is it detector-free" from the model config."""

from google.protobuf import text_format

from deepmac_tf.config import model_spec
from deepmac_tf.data import inspection
from deepmac_tf.protos import model_pb2


def _spec(text):
  return model_spec.from_model_config(
      text_format.Parse(text, model_pb2.DetectionModel()))


def test_deepmac_seen_classes_and_detector_free():
  spec = _spec('''center_net { num_classes: 4 deepmac_mask_estimation {
      allowed_masked_classes_ids: 3 allowed_masked_classes_ids: 1
      detector_free: true } }''')
  assert spec == model_spec.ModelSpec(
      architecture='center_net', num_classes=4, seen_class_ids=(3, 1),
      predicts_masks=True, detector_free=True,
      mask_field='model.center_net.deepmac_mask_estimation')
  assert spec.is_partially_supervised
  assert spec.mask_weight_class_ids(is_training=True) == (3, 1)
  assert spec.mask_weight_class_ids(is_training=False) == ()
  assert spec.seen_class_ids_field == (
      'model.center_net.deepmac_mask_estimation.allowed_masked_classes_ids')


def test_box_only_and_deepmarc_models():
  boxes = _spec('center_net { num_classes: 2 }')
  assert not boxes.predicts_masks and not boxes.detector_free
  assert boxes.seen_class_ids == () and boxes.seen_class_ids_field is None
  two_stage = _spec('''faster_rcnn { num_classes: 3 number_of_stages: 2
      deepmarc_mask_head { allowed_masked_classes_ids: 1 } }''')
  assert not two_stage.predicts_masks and two_stage.seen_class_ids == ()
  deepmarc = _spec('''faster_rcnn { num_classes: 3 number_of_stages: 3
      deepmarc_mask_head { allowed_masked_classes_ids: 1
                           allowed_masked_classes_ids: 2
                           allowed_masked_classes_ids: 3 } }''')
  assert deepmarc.predicts_masks and deepmarc.seen_class_ids == (1, 2, 3)
  assert not deepmarc.is_partially_supervised  # every class is seen
  assert not deepmarc.detector_free
  assert model_spec.from_configs({}) == model_spec.ModelSpec()


def test_inspection_reads_the_spec():
  model = text_format.Parse('''faster_rcnn { num_classes: 5
      number_of_stages: 3 deepmarc_mask_head {
      allowed_masked_classes_ids: 2 } }''', model_pb2.DetectionModel())
  assert inspection.model_mask_settings(model) == (
      5, (2,), True,
      'model.faster_rcnn.deepmarc_mask_head.allowed_masked_classes_ids')
