"""MaskX R-CNN (weight transfer) on the Mask R-CNN meta-architecture: T's
size, the stop-gradient, partial supervision, unseen-class masks from their
own box-head weights, the MLP branch, per-class channel selection and
STAGE_WISE training."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from deepmac_tf.mask_heads import weight_transfer as transfer_lib
from deepmac_tf.meta_architectures import mask_rcnn
from deepmac_tf.meta_architectures import mask_rcnn_class_masks as class_masks
from deepmac_tf.meta_architectures import mask_rcnn_losses as losses_lib
from deepmac_tf.meta_architectures import mask_rcnn_params as params_lib
from deepmac_tf.ops import class_channel

SIZE = 64
NUM_CLASSES = 4
FC_DIMS = 32
HEAD_WIDTH = 8


def _params(transfer=None, mlp=None, **mask_kwargs):
  mask = dict(network_type='mask_rcnn_fcn', num_init_channels=HEAD_WIDTH,
              crop_size=8, mask_size=16, num_sampled_masks=6,
              class_agnostic=False, allowed_masked_classes_ids=(1, 2),
              weight_transfer=params_lib.WeightTransferParams(
                  hidden_dim=16, **(transfer or {})),
              mlp_mask_branch=mlp)
  mask.update(mask_kwargs)
  return params_lib.MaskRCNNParams(
      num_classes=NUM_CLASSES, backbone='resnet10_fpn', fpn_num_filters=16,
      rpn_num_filters=16, box_head_num_convs=1, box_head_num_filters=16,
      box_head_fc_dims=FC_DIMS, num_sampled_rois=16, rpn_num_proposals=24,
      rpn_test_num_proposals=24, max_num_detections=5,
      mask_head=params_lib.MaskHeadParams(**mask))


def _groundtruth(mask_seed=0):
  """Instances of class 1 (seen), 3 (unseen) and 2 (seen)."""
  rng = np.random.default_rng(mask_seed)
  masks = np.zeros([1, 3, SIZE, SIZE], np.float32)
  masks[0, 0, 8:30, 8:30] = 1
  masks[0, 1, 30:60, 20:50] = rng.uniform(size=(30, 30)) > 0.5
  masks[0, 2, 4:40, 34:60] = 1
  return {
      'groundtruth_boxes': tf.constant(
          [[[8, 8, 30, 30], [30, 20, 60, 50], [4, 34, 40, 60]]],
          tf.float32) / SIZE,
      'groundtruth_classes': tf.constant([[1, 3, 2]]),
      'groundtruth_instance_masks': tf.constant(masks),
      'true_image_shape': tf.constant([[SIZE, SIZE, 3]]),
  }


def _with_mask_params(model, **changes):
  model._params = dataclasses.replace(  # pylint: disable=protected-access
      model.params,
      mask_head=dataclasses.replace(model.params.mask_head, **changes))


def _built(params):
  tf.random.set_seed(3)
  model = mask_rcnn.MaskRCNNMetaArch(True, params)
  predictions = model.predict(model.normalize_images(_images()), training=False)
  model.postprocess(predictions)
  return model


def _images():
  return tf.random.stateless_uniform([1, SIZE, SIZE, 3], (1, 2), 0, 255)


@pytest.fixture(scope='module')
def model():
  return _built(_params(mlp=params_lib.MlpMaskBranchParams(1, 16)))


def _detection_kernels(model):
  head = model._detection_head  # pylint: disable=protected-access
  return [head._classifier.kernel, head._box_regressor.kernel]  # pylint: disable=protected-access


def _mask_loss_gradients(model, variables, groundtruth=None):
  groundtruth = groundtruth or _groundtruth()
  with tf.GradientTape() as tape:
    predictions = model.predict(model.normalize_images(_images()), training=True,
                                groundtruth=groundtruth)
    loss = model.loss(predictions, groundtruth, training=True)[
        losses_lib.LOSS_MASK]
  return loss, tape.gradient(loss, variables)


def test_weight_transfer_parameter_count_cls_box_two_layers():
  fc_dim, width, hidden = 1024, 256, 1024
  transfer = transfer_lib.WeightTransferFunction(width, num_layers=2,
                                                 hidden_dim=hidden)
  input_dim = class_masks.embedding_dim(params_lib.TRANSFER_CLS_AND_BOX,
                                        fc_dim)
  assert input_dim == fc_dim + 4 * fc_dim
  weights, biases = transfer(tf.zeros([3, input_dim]))
  assert weights.shape == (3, width) and biases.shape == (3,)
  # Dense(5120 -> 1024) + Dense(1024 -> 256 weights + 1 bias).
  expected = (5120 * 1024 + 1024) + (1024 * 257 + 257)
  assert transfer.count_params() == expected == 5_507_329
  assert transfer_lib.transfer_parameter_count(input_dim, width, 2,
                                               hidden) == expected


def test_transfer_in_the_model_reads_cls_and_box_weights(model):
  transfer = model._weight_transfer  # pylint: disable=protected-access
  assert transfer.count_params() == (5 * FC_DIMS + 1) * 16 + (
      16 + 1) * (HEAD_WIDTH + 1)
  # MaskX heads have no projection of their own: T predicts it.
  assert model._mask_head.project_out is None  # pylint: disable=protected-access
  head = model._detection_head  # pylint: disable=protected-access
  embeddings = class_masks.box_head_class_embeddings(
      head, params_lib.TRANSFER_CLS_AND_BOX, tf.constant([3]))
  classifier, boxes = _detection_kernels(model)
  np.testing.assert_array_equal(embeddings[0, :FC_DIMS], classifier[:, 3])
  np.testing.assert_array_equal(
      embeddings[0, FC_DIMS:].numpy().reshape(4, FC_DIMS),
      tf.transpose(boxes[:, 12:16]))


def test_class_channel_equals_projecting_every_class_then_picking():
  rng = np.random.default_rng(0)
  features = tf.constant(rng.normal(size=(5, 6, 6, 7)), tf.float32)
  weights = tf.constant(rng.normal(size=(9, 7)), tf.float32)
  biases = tf.constant(rng.normal(size=(9,)), tf.float32)
  classes = tf.constant([0, 8, 3, 3, 5])
  every = tf.einsum('nhwd,cd->nhwc', features, weights) + biases
  expected = tf.gather(every, classes[:, None], axis=-1, batch_dims=1)[..., 0]
  np.testing.assert_allclose(
      class_channel.class_channel_logits(features, weights, biases, classes),
      expected, rtol=1e-5, atol=1e-5)


def test_learned_class_specific_head_picks_its_own_channel():
  model = _built(_params(weight_transfer=None))
  head = model._mask_head  # pylint: disable=protected-access
  crops = tf.random.stateless_normal([3, 8, 8, 16], (4, 5))
  classes = tf.constant([1, 4, 2])
  every = head(crops, training=False)  # [n, M, M, C]
  expected = tf.gather(every, classes[:, None] - 1, axis=-1,
                       batch_dims=1)[..., 0]
  got = class_masks.head_row_logits_fn(head, training=False)(crops, classes)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_stop_gradient_cuts_the_mask_loss_from_the_box_head(model):
  variables = _detection_kernels(model) + [
      model._weight_transfer.trainable_variables[0]]  # pylint: disable=protected-access
  _with_mask_params(model, weight_transfer=dataclasses.replace(
      model.params.mask_head.weight_transfer, stop_gradient=True))
  loss, grads = _mask_loss_gradients(model, variables)
  assert float(loss) > 0
  for grad in grads[:2]:
    assert grad is None or not np.any(tf.convert_to_tensor(grad).numpy())
  assert np.any(grads[2].numpy())  # T itself trains
  _with_mask_params(model, weight_transfer=dataclasses.replace(
      model.params.mask_head.weight_transfer, stop_gradient=False))
  try:
    _, grads = _mask_loss_gradients(model, variables)
  finally:
    _with_mask_params(model, weight_transfer=dataclasses.replace(
        model.params.mask_head.weight_transfer, stop_gradient=True))
  for grad in grads[:2]:
    assert grad is not None and np.any(tf.convert_to_tensor(grad).numpy())


def test_only_allowed_classes_train_the_mask_branch(model):
  """Instance 1 is class 3 (not allowed): its mask changes nothing."""
  variables = model._weight_transfer.trainable_variables  # pylint: disable=protected-access
  loss_a, grads_a = _mask_loss_gradients(model, variables, _groundtruth(0))
  loss_b, grads_b = _mask_loss_gradients(model, variables, _groundtruth(1))
  assert float(loss_a) == float(loss_b)
  for a, b in zip(grads_a, grads_b):
    np.testing.assert_array_equal(a, b)
  # ... while an allowed instance's mask does count.
  groundtruth = _groundtruth(0)
  masks = groundtruth['groundtruth_instance_masks'].numpy()
  masks[0, 0] = 1 - masks[0, 0]
  groundtruth['groundtruth_instance_masks'] = tf.constant(masks)
  loss_c, _ = _mask_loss_gradients(model, variables, groundtruth)
  assert float(loss_c) != float(loss_a)


def _prompted_masks(model, classes):
  predictions = model.predict(model.normalize_images(_images()), training=False)
  boxes = tf.constant([[[0.1, 0.1, 0.6, 0.6]] * len(classes)])
  return model.predict_masks_from_boxes(
      predictions, boxes, classes=tf.constant([classes]))[
          'detection_masks'].numpy()[0]


def test_unseen_class_mask_comes_from_its_own_box_weights(model):
  """Class 3 (0-based 2) never has a mask loss; its mask is T(w_det(3))."""
  before = _prompted_masks(model, [2, 3])
  assert not np.allclose(before[0], before[1])
  classifier, boxes = _detection_kernels(model)
  saved = [classifier.numpy(), boxes.numpy()]
  noise = np.random.default_rng(0).normal(size=saved[0].shape[0])
  changed = saved[0].copy()
  changed[:, 3] += noise  # column 3 = 1-based class 3
  classifier.assign(changed)
  try:
    after = _prompted_masks(model, [2, 3])
  finally:
    classifier.assign(saved[0])
  assert not np.allclose(before[0], after[0])
  np.testing.assert_array_equal(before[1], after[1])  # class 4 untouched
  np.testing.assert_array_equal(_prompted_masks(model, [2, 3]), before)


def test_detections_get_their_class_channel(model):
  predictions = model.predict(model.normalize_images(_images()), training=False)
  detections = model.postprocess(predictions)
  count = int(detections['num_detections'][0])
  assert count > 0
  boxes = detections['detection_boxes'][:, :count]
  prompted = model.predict_masks_from_boxes(
      predictions, boxes, classes=detections['detection_classes'][:, :count])
  np.testing.assert_allclose(detections['detection_masks'][0, :count],
                             prompted['detection_masks'][0], atol=1e-5)
  with pytest.raises(ValueError, match='pass the class of each box'):
    model.predict_masks_from_boxes(predictions, boxes)


def test_mlp_branch_logits_are_added_before_the_sigmoid(model):
  crops = tf.random.stateless_normal([2, 8, 8, 16], (6, 7))
  classes = tf.constant([1, 3])
  mask_params = model.params.mask_head
  head = model._mask_head  # pylint: disable=protected-access
  mlp = model._mlp_mask_branch  # pylint: disable=protected-access
  args = (head, mask_params, model._detection_head,  # pylint: disable=protected-access
          model._weight_transfer, None)  # pylint: disable=protected-access
  fused = class_masks.row_logits_fn(*args, mlp_branch=mlp, training=False)
  alone = class_masks.row_logits_fn(*args, mlp_branch=None, training=False)
  np.testing.assert_allclose(fused(crops, classes),
                             alone(crops, classes) + mlp(crops),
                             rtol=1e-5, atol=1e-5)
  # class-agnostic + MLP: the same MLP logits on the one channel.
  agnostic = dataclasses.replace(mask_params, class_agnostic=True,
                                 weight_transfer=None)
  agnostic_head = _built(_params(weight_transfer=None, class_agnostic=True))
  head = agnostic_head._mask_head  # pylint: disable=protected-access
  np.testing.assert_allclose(
      class_masks.row_logits_fn(head, agnostic, mlp_branch=mlp,
                                training=False)(crops, classes),
      head(crops)[..., 0] + mlp(crops), rtol=1e-5, atol=1e-5)


def test_random_input_is_fixed_and_ignores_the_box_head():
  model = _built(_params(transfer={'input': params_lib.TRANSFER_RANDOM}))
  embeddings = model._random_class_embeddings  # pylint: disable=protected-access
  assert embeddings.shape == (NUM_CLASSES, 5 * FC_DIMS)
  assert not embeddings.trainable
  assert embeddings.ref() not in {v.ref() for v in model.trainable_variables}
  before = _prompted_masks(model, [0, 2])
  classifier, _ = _detection_kernels(model)
  classifier.assign(classifier + 1.0)
  np.testing.assert_array_equal(_prompted_masks(model, [0, 2]), before)
  _, grads = _mask_loss_gradients(
      model, model._weight_transfer.trainable_variables)  # pylint: disable=protected-access
  assert all(np.any(g.numpy()) for g in grads)


def test_stage_wise_changes_no_detector_variable():
  model = _built(_params(training_mode=params_lib.STAGE_WISE))
  detector = [v for layer in model.detection_layers.values()
              for v in layer.variables]
  assert any('moving_mean' in v.name for v in detector)
  trainable = {v.ref() for v in model.trainable_variables}
  assert not any(v.ref() in trainable for v in detector)
  mask_vars = (model._mask_head.trainable_variables +  # pylint: disable=protected-access
               model._weight_transfer.trainable_variables)  # pylint: disable=protected-access
  assert all(v.ref() in trainable for v in mask_vars)
  before = [v.numpy() for v in detector + mask_vars]
  variables = model.trainable_variables
  for _ in range(2):
    with tf.GradientTape() as tape:
      predictions = model.predict(model.normalize_images(_images()), training=True,
                                  groundtruth=_groundtruth())
      total = tf.add_n(list(model.loss(predictions, _groundtruth(),
                                       training=True).values()))
    for variable, grad in zip(variables, tape.gradient(total, variables)):
      if grad is not None:
        variable.assign_sub(0.5 * grad)
  after = [v.numpy() for v in detector + mask_vars]
  for old, new in zip(before[:len(detector)], after[:len(detector)]):
    np.testing.assert_array_equal(old, new)
  assert any(not np.array_equal(old, new) for old, new in
             zip(before[len(detector):], after[len(detector):]))
  restored = model.restore_from_objects('detection')['model']
  children = set(restored._trackable_children())  # pylint: disable=protected-access
  assert {'_backbone', '_decoder', '_rpn_head', '_detection_head'} <= children


def test_class_channel_benchmark_figures():
  from deepmac_tf.benchmarks import class_channel_benchmark  # pylint: disable=g-import-not-at-top
  figures = class_channel_benchmark.class_specific_mask_figures(
      num_classes=7, mask_size=4, num_features=3, num_instances=2,
      warmup_steps=1, steps=1)
  assert figures['logits_mib']['all_channels'] == pytest.approx(
      7 * figures['logits_mib']['class_channel'], rel=0.1)
  for name in ('class_channel', 'all_channels_then_pick'):
    assert figures[name]['median_ms'] > 0
  assert figures['ratio_class_channel'] > 0


def test_transfer_predicts_the_projection_of_a_deep_catalogue_head():
  """MaskX + HG-20: T predicts the hourglass head's final 1x1 projection."""
  model = _built(_params(network_type='hourglass20', crop_size=8,
                         mask_size=16))
  assert model._mask_head.project_out is None  # pylint: disable=protected-access
  masks = _prompted_masks(model, [0, 3])
  assert masks.shape == (2, 16, 16)
  assert not np.allclose(masks[0], masks[1])


def test_stage_wise_restores_the_whole_detector(tmp_path):
  """fine_tune_checkpoint_type "detection" in STAGE_WISE: backbone, FPN,
  RPN and box head of a trained class-agnostic model."""
  from deepmac_tf.protos import train_pb2  # pylint: disable=g-import-not-at-top
  from deepmac_tf.training import fine_tune  # pylint: disable=g-import-not-at-top
  detector = _built(_params(weight_transfer=None, class_agnostic=True))
  path = tf.train.Checkpoint(model=detector).save(str(tmp_path / 'ckpt'))
  tf.random.set_seed(11)
  model = mask_rcnn.MaskRCNNMetaArch(True, _params(
      training_mode=params_lib.STAGE_WISE))
  model.postprocess(model.predict(model.normalize_images(_images()),
                                  training=False))
  config = train_pb2.TrainConfig(fine_tune_checkpoint=path,
                                 fine_tune_checkpoint_type='detection')
  fine_tune.restore_fine_tune_checkpoint(model, config)
  for name, layer in model.detection_layers.items():
    # Keyed by checkpoint path: frozen layers list their variables in
    # another order.
    mine = fine_tune.variables_by_checkpoint_key(tf.train.Checkpoint(
        layer=layer))
    theirs = fine_tune.variables_by_checkpoint_key(tf.train.Checkpoint(
        layer=detector.detection_layers[name]))
    assert set(mine) == set(theirs) and mine, name
    for key, variable in mine.items():
      np.testing.assert_array_equal(variable.numpy(), theirs[key].numpy())
