"""ops.multiclass_nms: the OD API's per-class cap (max_detections_per_class)
then the total cap, on hand-made boxes, in the fused and the padded (TPU)
form, with static shapes under tf.function; and the config field reaches
the Deep-MARC params (a bad value is one ConfigError line)."""

import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf.ops import multiclass_nms as nms_lib

# Four boxes of one image, apart from each other except box 3 (= box 0
# shifted by 1 px: IoU 0.82 with it).
BOXES = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50],
                  [1, 1, 11, 11]], np.float32)
# Class 0 scores its three separate boxes high, class 1 has one box.
SCORES = np.array([[0.9, 0.0], [0.8, 0.0], [0.7, 0.0], [0.0, 0.6]],
                  np.float32)


def _run(scores=SCORES, boxes=BOXES, *, per_class, total, fused,
         score_threshold=0.05):
  out = nms_lib.multiclass_nms(
      tf.constant(boxes)[None, :, None, :], tf.constant(scores)[None],
      max_detections_per_class=per_class, max_total_detections=total,
      iou_threshold=0.5, score_threshold=score_threshold, pre_nms_top_k=100,
      fused=fused)
  return [t.numpy()[0] for t in out]


@pytest.mark.parametrize('fused', [True, False])
def test_per_class_cap_lets_another_class_in(fused):
  boxes, scores, classes, num = _run(per_class=2, total=3, fused=fused)
  assert num == 3
  np.testing.assert_allclose(scores, [0.9, 0.8, 0.6])
  np.testing.assert_array_equal(classes, [0, 0, 1])
  np.testing.assert_array_equal(boxes, BOXES[[0, 1, 3]])


@pytest.mark.parametrize('fused', [True, False])
def test_cap_at_or_above_the_total_is_the_uncapped_nms(fused):
  for per_class in (3, 100):
    boxes, scores, classes, num = _run(per_class=per_class, total=3,
                                       fused=fused)
    assert num == 3
    np.testing.assert_allclose(scores, [0.9, 0.8, 0.7])
    np.testing.assert_array_equal(classes, [0, 0, 0])
    np.testing.assert_array_equal(boxes, BOXES[:3])


@pytest.mark.parametrize('fused', [True, False])
def test_suppression_is_per_class_and_padding_is_zeros(fused):
  # Box 3 overlaps box 0: suppressed in class 0, kept in class 1.
  scores = SCORES.copy()
  scores[3, 0] = 0.85
  boxes, out_scores, classes, num = _run(scores, per_class=1, total=6,
                                         fused=fused)
  assert num == 2
  np.testing.assert_allclose(out_scores, [0.9, 0.6, 0, 0, 0, 0])
  np.testing.assert_array_equal(classes, [0, 1, 0, 0, 0, 0])
  np.testing.assert_array_equal(boxes[:2], BOXES[[0, 3]])
  assert (boxes[2:] == 0).all()


def test_both_forms_agree_on_random_boxes_with_a_per_class_cap():
  rng = np.random.default_rng(0)
  corners = rng.uniform(0, 50, size=(2, 40, 4, 2)).astype(np.float32)
  boxes = np.concatenate([corners.min(-1)[..., :2], corners.max(-1)[..., :2]
                          + 5], -1)[:, :, None, :]
  boxes = np.broadcast_to(boxes, (2, 40, 4, 4)).copy()
  boxes += rng.uniform(0, 2, size=boxes.shape).astype(np.float32)
  scores = rng.uniform(size=(2, 40, 4)).astype(np.float32)
  results = [nms_lib.multiclass_nms(
      tf.constant(boxes), tf.constant(scores), max_detections_per_class=3,
      max_total_detections=10, iou_threshold=0.5, score_threshold=0.05,
      pre_nms_top_k=40, fused=fused) for fused in (True, False)]
  (b1, s1, c1, n1), (b2, s2, c2, n2) = results
  np.testing.assert_array_equal(n1, n2)
  np.testing.assert_allclose(s1, s2, atol=1e-6)
  np.testing.assert_array_equal(c1, c2)
  np.testing.assert_allclose(b1, b2, atol=1e-5)
  for b in range(2):
    counts = np.bincount(c1[b, :n1[b]], minlength=4)
    assert counts.max() <= 3 and n1[b] == 10


@pytest.mark.parametrize('fused', [True, False])
def test_static_shapes_in_a_tf_function_with_unknown_batch(fused):
  # 2 classes x 1 per class < 5 total: the padded form pads to 5 too.
  @tf.function(input_signature=[tf.TensorSpec([None, 4, 2, 4]),
                                tf.TensorSpec([None, 4, 2])],
               autograph=False)
  def detect(boxes, scores):
    return nms_lib.multiclass_nms(
        boxes, scores, max_detections_per_class=1, max_total_detections=5,
        iou_threshold=0.5, score_threshold=0.05, pre_nms_top_k=100,
        fused=fused)

  concrete = detect.get_concrete_function()
  assert [o.shape.as_list() for o in concrete.structured_outputs] == [
      [None, 5, 4], [None, 5], [None, 5], [None]]
  boxes = np.broadcast_to(BOXES[:, None, :], (4, 2, 4))[None]
  out = detect(tf.constant(np.concatenate([boxes, boxes])),
               tf.constant(np.stack([SCORES, SCORES])))
  np.testing.assert_array_equal(out[3], [2, 2])
  np.testing.assert_allclose(out[1][0], [0.9, 0.6, 0, 0, 0])


def test_bad_caps_are_refused():
  with pytest.raises(ValueError, match='max_detections_per_class'):
    _run(per_class=0, total=3, fused=True)


@pytest.mark.parametrize('text, per_class, total', [
    ('max_detections_per_class: 100 max_total_detections: 300', 100, 300),
    ('max_total_detections: 300', 100, 300),  # The OD API's default 100.
    ('max_detections_per_class: 7 max_total_detections: 7', 7, 7),
])
def test_config_fields_reach_the_params(text, per_class, total):
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  from deepmac_tf.builders import mask_rcnn_builder  # pylint: disable=g-import-not-at-top
  from deepmac_tf.protos import faster_rcnn_pb2  # pylint: disable=g-import-not-at-top
  config = text_format.Parse(_config(text), faster_rcnn_pb2.FasterRcnn())
  params = mask_rcnn_builder.params_from_proto(config)
  assert (params.max_detections_per_class, params.max_num_detections) == (
      per_class, total)


def test_zero_per_class_cap_names_the_field():
  from google.protobuf import text_format  # pylint: disable=g-import-not-at-top
  from deepmac_tf.builders import mask_rcnn_builder  # pylint: disable=g-import-not-at-top
  from deepmac_tf.errors import ConfigError  # pylint: disable=g-import-not-at-top
  from deepmac_tf.protos import faster_rcnn_pb2  # pylint: disable=g-import-not-at-top
  config = text_format.Parse(_config('max_detections_per_class: 0'),
                             faster_rcnn_pb2.FasterRcnn())
  with pytest.raises(ConfigError, match=(
      r'^model\.faster_rcnn\.second_stage_post_processing\.'
      r'batch_non_max_suppression\.max_detections_per_class: must be >= 1'))\
      as info:
    mask_rcnn_builder.params_from_proto(config)
  assert '\n' not in str(info.value)


def _config(nms_text):
  return f'''
    num_classes: 3
    feature_extractor {{ type: "faster_rcnn_resnet50_fpn_keras"
      fpn {{ min_level: 3 max_level: 7 }} }}
    first_stage_anchor_generator {{ multiscale_anchor_generator {{
      min_level: 3 max_level: 7 anchor_scale: 4.0 }} }}
    second_stage_post_processing {{ score_converter: SOFTMAX
      batch_non_max_suppression {{ {nms_text} }} }}'''


def test_model_garden_reference_refuses_a_per_class_cap():
  """The benchmark's Model Garden reference has no per-class cap: one
  ConfigError line, not detections that silently differ."""
  from deepmac_tf.benchmarks import model_garden_reference  # pylint: disable=g-import-not-at-top
  from deepmac_tf.errors import ConfigError  # pylint: disable=g-import-not-at-top
  from deepmac_tf.meta_architectures import mask_rcnn_params  # pylint: disable=g-import-not-at-top
  params = mask_rcnn_params.MaskRCNNParams(
      num_classes=3, backbone='resnet10_fpn', max_num_detections=6,
      max_detections_per_class=2)
  with pytest.raises(ConfigError, match=r'max_detections_per_class: 2 < '):
    model_garden_reference.reference_config(params, (64, 64))
