"""The OD API DetectionModel lifecycle (issue 13, part 2): OD API Python code
runs unchanged apart from the import.

The few-shot test follows the OD API's eager few-shot tutorial: build from
the pipeline config with is_training=True, restore the backbone through a
fake checkpoint object tree, create variables with a dummy preprocess /
predict / postprocess, then a tf.function train step that calls
provide_groundtruth, preprocess per image, predict(images, shapes) and
loss(prediction_dict, shapes), and applies gradients to the heads only.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from deepmac_tf import config as config_lib
from deepmac_tf.builders import model_builder
from deepmac_tf.data.fields import InputFields
from deepmac_tf.data.synthetic import scene as scene_lib
from deepmac_tf.meta_architectures import detection_model
from deepmac_tf.meta_architectures import mask_rcnn
import pipeline_fixtures
import test_mask_rcnn

NUM_CLASSES = 10
SIZE = 64


def _synthetic_examples(count):
  """OD API tutorial inputs: uint8 images, normalized boxes, one-hot
  classes (no background column) and masks, one list entry per image."""
  images, boxes, classes, masks = [], [], [], []
  for index in range(count):
    scene = scene_lib.render_scene(scene_lib.scene_rng(0, 'train', index))
    images.append(scene.image)
    boxes.append(np.array([[y / SIZE, x / SIZE, (y + h) / SIZE, (x + w) / SIZE]
                           for x, y, w, h in (i.bbox for i in scene.instances)],
                          np.float32).reshape([-1, 4]))
    ids = np.array([i.class_id for i in scene.instances], np.int32)
    classes.append(tf.one_hot(ids - 1, NUM_CLASSES))
    masks.append(np.array([i.mask for i in scene.instances],
                          np.float32).reshape([-1, SIZE, SIZE]))
  return images, boxes, classes, masks


def _build():
  configs = config_lib.get_configs_from_pipeline_file(
      pipeline_fixtures.TINY_CONFIG)
  return model_builder.build(model_config=configs['model'], is_training=True)


def test_preprocess_resizes_with_the_config_resizer():
  model = _build()
  images, shapes = model.preprocess(tf.zeros([2, 80, 120, 3]))
  assert images.shape == (2, SIZE, SIZE, 3)
  # keep_aspect_ratio_resizer 64 / 64 with padding: 80 x 120 -> 43 x 64.
  np.testing.assert_array_equal(shapes.numpy(), [[43, 64, 3]] * 2)


def test_odapi_loss_equals_the_explicit_loss():
  model = _build()
  images, boxes, classes, masks = _synthetic_examples(2)
  preprocessed, shapes = model.preprocess(
      tf.convert_to_tensor(np.stack(images), tf.float32))
  predictions = model.predict(preprocessed, shapes, training=False)
  model.provide_groundtruth(groundtruth_boxes_list=boxes,
                            groundtruth_classes_list=classes,
                            groundtruth_masks_list=masks)
  assert model.groundtruth_has_field('boxes')
  assert model.groundtruth_lists('masks') is masks
  odapi = model.loss(predictions, shapes)
  explicit = model.loss(predictions, detection_model.groundtruth_batch_from_lists(
      boxes, classes, masks), training=True)
  assert set(odapi) == {'Loss/object_center', 'Loss/box/scale',
                        'Loss/box/offset', 'Loss/deep_mask_estimation'}
  for name, value in explicit.items():
    np.testing.assert_allclose(odapi[name].numpy(), value.numpy(), rtol=1e-6)
  assert model.regularization_losses() == [] and model.updates() == []


def test_groundtruth_lists_become_a_padded_batch():
  batch = detection_model.groundtruth_batch_from_lists(
      [tf.constant([[0.1, 0.1, 0.5, 0.5]]), tf.zeros([0, 4])],
      [tf.constant([[0.0, 1.0, 0.0]]), tf.zeros([0, 3])],
      groundtruth_weights_list=[tf.constant([0.5]), tf.zeros([0])])
  np.testing.assert_array_equal(batch[InputFields.CLASSES].numpy(), [[2], [0]])
  np.testing.assert_array_equal(batch[InputFields.WEIGHTS].numpy(),
                                [[0.5], [0.0]])
  np.testing.assert_array_equal(batch[InputFields.NUM_BOXES].numpy(), [1, 0])


def test_unsupported_odapi_inputs_say_so():
  model = _build()
  with pytest.raises(ValueError, match='groundtruth_keypoints_list is '
                     'supported by the OD API, not by deepmac_tf'):
    model.provide_groundtruth([tf.zeros([0, 4])], [tf.zeros([0, 10])],
                              groundtruth_keypoints_list=[tf.zeros([0, 1, 2])])
  with pytest.raises(RuntimeError, match='provide_groundtruth'):
    model.loss({}, tf.constant([[SIZE, SIZE, 3]]))
  with pytest.raises(ValueError, match='unpack it'):
    model.predict(model.preprocess(tf.zeros([1, SIZE, SIZE, 3])))


def test_eager_few_shot_fine_tuning_the_odapi_way(tmp_path):
  tf.random.set_seed(0)
  # A "pretrained" checkpoint, as the tutorial downloads one.
  pretrained = _build()
  image, shapes = pretrained.preprocess(tf.zeros([1, SIZE, SIZE, 3]))
  pretrained.postprocess(pretrained.predict(image, shapes), shapes)
  checkpoint_path = tf.train.Checkpoint(model=pretrained).save(
      str(tmp_path / 'pretrained' / 'ckpt'))

  detection_model = _build()
  fake_model = tf.train.Checkpoint(
      _feature_extractor=detection_model._feature_extractor)  # pylint: disable=protected-access
  ckpt = tf.train.Checkpoint(model=fake_model)
  ckpt.restore(checkpoint_path).expect_partial()
  image, shapes = detection_model.preprocess(tf.zeros([1, SIZE, SIZE, 3]))
  prediction_dict = detection_model.predict(image, shapes)
  _ = detection_model.postprocess(prediction_dict, shapes)
  for ours, theirs in zip(detection_model.feature_extractor.weights,
                          pretrained.feature_extractor.weights):
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
  # restore_from_objects names the same tree.
  assert set(detection_model.restore_from_objects('detection')) == {'model'}

  heads = (list(detection_model._prediction_head_dict.values()) +  # pylint: disable=protected-access
           [detection_model._mask_net])  # pylint: disable=protected-access
  to_fine_tune = [v for head in tf.nest.flatten(heads)
                  for v in head.trainable_variables]
  optimizer = tf_keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
  images, boxes, classes, masks = _synthetic_examples(4)
  image_tensors = [tf.expand_dims(tf.convert_to_tensor(i, tf.float32), 0)
                   for i in images]
  batch_size = len(images)

  @tf.function
  def train_step_fn(image_tensors, groundtruth_boxes_list,
                    groundtruth_classes_list, groundtruth_masks_list):
    shapes = tf.constant(batch_size * [[SIZE, SIZE, 3]], dtype=tf.int32)
    detection_model.provide_groundtruth(
        groundtruth_boxes_list=groundtruth_boxes_list,
        groundtruth_classes_list=groundtruth_classes_list,
        groundtruth_masks_list=groundtruth_masks_list)
    with tf.GradientTape() as tape:
      preprocessed_images = tf.concat(
          [detection_model.preprocess(image_tensor)[0]
           for image_tensor in image_tensors], axis=0)
      prediction_dict = detection_model.predict(preprocessed_images, shapes)
      losses_dict = detection_model.loss(prediction_dict, shapes)
      total_loss = tf.add_n(list(losses_dict.values()))
    gradients = tape.gradient(total_loss, to_fine_tune)
    optimizer.apply_gradients(zip(gradients, to_fine_tune))
    return total_loss

  losses = [float(train_step_fn(image_tensors, boxes, classes, masks))
            for _ in range(15)]
  assert all(np.isfinite(losses))
  assert np.mean(losses[-3:]) < np.mean(losses[:3]), losses
  detections = detection_model.postprocess(
      detection_model.predict(*detection_model.preprocess(
          tf.convert_to_tensor(np.stack(images), tf.float32))), shapes)
  assert detections['detection_masks'].shape[:2] == (4, 10)


def test_mask_rcnn_odapi_lifecycle_equals_the_explicit_one():
  model = mask_rcnn.MaskRCNNMetaArch(True, test_mask_rcnn._params())  # pylint: disable=protected-access
  gt = test_mask_rcnn._groundtruth()  # pylint: disable=protected-access
  raw = tf.random.stateless_uniform([1, SIZE, SIZE, 3], (1, 2), 0, 255)
  images, shapes = model.preprocess(raw)
  tf.random.set_seed(3)
  explicit = model.loss(model.predict(images, training=True, groundtruth=gt),
                        gt, training=True)
  num = 3  # with the padding row: a zero box whose one-hot row is empty
  classes = tf.one_hot(gt['groundtruth_classes'][0, :num] - 1,
                       test_mask_rcnn.NUM_CLASSES)
  model.provide_groundtruth(
      groundtruth_boxes_list=[gt['groundtruth_boxes'][0, :num]],
      groundtruth_classes_list=[classes],
      groundtruth_masks_list=[gt['groundtruth_instance_masks'][0, :num]],
      groundtruth_mask_weights_list=[
          gt['groundtruth_instance_mask_weights'][0, :num]])
  tf.random.set_seed(3)
  odapi = model.loss(model.predict(images, shapes), shapes)
  assert set(odapi) == set(explicit)
  for name, value in explicit.items():
    np.testing.assert_allclose(odapi[name].numpy(), value.numpy(), rtol=1e-5,
                               atol=1e-6, err_msg=name)
  detections = model.postprocess(model.predict(images, shapes, training=False),
                                 shapes)
  assert 'detection_masks' in detections
