"""What Deep-MAC's mask branch costs, for ``scripts/benchmark.py``.

Two paired figures, each timed in turn in one process
(``timing.time_interleaved``) so machine load hits both sides alike:

* ``mask_branch_overhead``: Deep-MAC inference (preprocess, predict,
  postprocess, batch 1) over the detection-only build of the same config
  (``deepmac_mask_estimation`` removed: CenterNet with the same backbone and
  detection heads, restored from the same checkpoint), minus 1. Deep-MAC
  runs with ``mask_detection_score_threshold`` set so that
  ``masks_per_image`` of the ``max_box_predictions`` slots pass (the score
  between the n-th and the (n+1)-th best detection of the detection-only
  model, whose detections are Deep-MAC's). The all-slots figure (threshold
  0, every slot gets a mask: the OD API's behaviour) is timed in the same
  rounds.
* ``train_step_valid_only_over_all_slots``: the training step with the
  mask head on the instances a loss weighs (``mask_head_slots:
  SELECTED_SLOTS``) over the same step with the head on every groundtruth
  slot (``ALL_SLOTS``, today's TPU form), same batch. With the config's
  ``SLOTS_AUTO`` both are step functions of one model and optimizer (the
  other form traced inside ``selected_slots.default_static_shapes``), so
  a large model is not held twice.
"""

import copy

import numpy as np
import tensorflow as tf

from deepmac_tf import graph_functions
from deepmac_tf.benchmarks import flops
from deepmac_tf.benchmarks import timing
from deepmac_tf.config import model_spec
from deepmac_tf.export import exporter
from deepmac_tf.mask_heads import selected_slots


def is_deepmac_detector(model_config):
  """True for a CenterNet config with a (detecting) Deep-MAC mask branch."""
  spec = model_spec.from_model_config(model_config)
  return is_deepmac(model_config) and not spec.detector_free


def is_deepmac(model_config):
  """True for any CenterNet config with a Deep-MAC mask branch."""
  spec = model_spec.from_model_config(model_config)
  return spec.architecture == 'center_net' and spec.predicts_masks


def detection_only_config(model_config):
  """A copy of a Deep-MAC model config without its mask branch."""
  config = copy.deepcopy(model_config)
  config.center_net.ClearField('deepmac_mask_estimation')
  return config


def with_mask_settings(model_config, score_threshold=None, slots=None):
  """A copy with ``mask_detection_score_threshold`` / ``mask_head_slots``
  (an enum name such as 'ALL_SLOTS') set."""
  config = copy.deepcopy(model_config)
  deepmac = config.center_net.deepmac_mask_estimation
  if score_threshold is not None:
    deepmac.mask_detection_score_threshold = score_threshold
  if slots is not None:
    deepmac.mask_head_slots = type(deepmac).MaskHeadSlots.Value(slots)
  return config


def threshold_passing(scores, count):
  """A score threshold that ``count`` of ``scores`` (one image) pass.

  Returns:
    (threshold as a float32-exact Python float, how many pass it). Midway
    between the count-th and the (count + 1)-th best score; 0.0 (all pass)
    when count >= len(scores).
  """
  ordered = np.sort(np.asarray(scores, np.float32).reshape(-1))[::-1]
  if count >= len(ordered):
    return 0.0, len(ordered)
  threshold = float(np.float32(0.5 * (ordered[count - 1] + ordered[count])))
  # The config stores float32: count what the stored value lets through.
  return threshold, int(np.sum(ordered >= np.float32(threshold)))


def _inference_fn(model_config, checkpoint_path, image):
  """(tf.function-backed call, model) for batch-1 inference on ``image``."""
  model, resizer = exporter.build_model_and_resizer(model_config)
  exporter.create_variables(model, resizer)
  exporter.restore_model(model, checkpoint_path)
  shapes = tf.constant([[image.shape[1], image.shape[2], 3]], tf.int32)

  @graph_functions.function
  def detect(images):
    predictions = model.predict(model.normalize_images(images), training=False)
    return model.postprocess(predictions, shapes)

  return lambda: detect(image), model


def _masks_computed(threshold):
  def describe(result):
    scores = result['detection_scores'].numpy()
    masks = result['detection_masks'].numpy()
    return {'detections_with_masks': int(np.sum(scores >= threshold)),
            'nonzero_mask_slots': int(np.sum(
                np.any(masks != 0, axis=(-2, -1))))}
  return describe


def inference_overhead(model_config, checkpoint_path, image,
                       masks_per_image, warmup_steps, steps, every_slot=None):
  """Deep-MAC inference vs its detection-only build (see module doc).

  Args:
    model_config: a Deep-MAC (detecting) ``DetectionModel`` message.
    checkpoint_path: a checkpoint of that model (both builds restore it).
    image: float32 [1, H, W, 3].
    masks_per_image: detections that pass the mask score threshold.
    warmup_steps / steps: untimed and timed rounds.
    every_slot: optional call of this model's inference with threshold 0
      (built here when None).

  Returns:
    dict: ``mask_branch_overhead`` (thresholded Deep-MAC / detection-only -
    1), ``mask_branch_overhead_all_slots`` (every slot masked), the three
    timing figures and the threshold used.
  """
  detect_only, _ = _inference_fn(detection_only_config(model_config),
                                 checkpoint_path, image)
  scores = detect_only()['detection_scores'].numpy()[0]
  threshold, passing = threshold_passing(scores, masks_per_image)
  thresholded, _ = _inference_fn(
      with_mask_settings(model_config, score_threshold=threshold),
      checkpoint_path, image)
  if every_slot is None:
    every_slot, _ = _inference_fn(
        with_mask_settings(model_config, score_threshold=0.0),
        checkpoint_path, image)
  figures = timing.time_interleaved(
      {'detection_only': detect_only, 'deepmac_thresholded': thresholded,
       'deepmac_all_slots': every_slot}, warmup_steps, steps)
  figures['deepmac_thresholded'].update(
      _masks_computed(threshold)(thresholded()))
  base = figures['detection_only']['median_ms']
  return {
      'mask_branch_overhead': _overhead(
          figures['deepmac_thresholded']['median_ms'], base),
      'mask_branch_overhead_all_slots': _overhead(
          figures['deepmac_all_slots']['median_ms'], base),
      'mask_detection_score_threshold': threshold,
      'detections_passing_threshold': passing,
      'detection_slots': int(len(scores)),
      'timing': figures,
  }


def inference_flops(model_config, image_size, masks_per_image):
  """Deep-MAC inference vs its detection-only build, in FLOPs (batch 1).

  Traced, never run (weights do not matter). Three counts, all with static
  shapes: the detection-only inference; Deep-MAC inference with every slot
  masked (threshold 0); Deep-MAC box-prompted masks at 2 boxes minus at 1
  box (one instance's mask head, with its crop). The mask branch's fixed
  part (embedding heads, crops) is the rest.

  Args:
    model_config: a Deep-MAC (detecting) ``DetectionModel`` message.
    image_size: (height, width) of the model input.
    masks_per_image: detections that get a mask (the thresholded figure).

  Returns:
    dict: ``detection_only_gflops``, ``mask_branch_fixed_gflops``,
    ``mask_head_gflops_per_instance``, ``masks_per_image``,
    ``mask_branch_overhead_flops`` ((fixed + masks_per_image x head) /
    detection-only), ``mask_branch_overhead_all_slots_flops`` and
    ``detection_slots``.
  """
  height, width = image_size
  spec = tf.TensorSpec([1, height, width, 3], tf.float32)
  shapes = tf.constant([[height, width, 3]], tf.int32)

  def detection_flops(config):
    model, resizer = exporter.build_model_and_resizer(config)
    exporter.create_variables(model, resizer)
    detect = lambda images: model.postprocess(model.predict(
        model.normalize_images(images), training=False), shapes)
    return model, flops.function_flops(detect, spec)

  _, detection_only = detection_flops(detection_only_config(model_config))
  model, every_slot = detection_flops(
      with_mask_settings(model_config, score_threshold=0.0))

  def box_prompted(num_boxes):
    boxes = tf.constant([[[0.1, 0.1, 0.6, 0.6]] * num_boxes], tf.float32)
    classes = tf.zeros([1, num_boxes], tf.int32)
    return flops.function_flops(
        lambda images: model.predict_masks_from_boxes(
            model.predict(model.normalize_images(images), training=False),
            boxes, classes=classes)['detection_masks'], spec)

  per_instance = box_prompted(2) - box_prompted(1)
  slots = model_config.center_net.object_center_params.max_box_predictions
  fixed = every_slot - detection_only - slots * per_instance
  giga = lambda value: round(value / 1e9, 4)
  return {
      'detection_only_gflops': giga(detection_only),
      'mask_branch_fixed_gflops': giga(fixed),
      'mask_head_gflops_per_instance': giga(per_instance),
      'masks_per_image': int(masks_per_image),
      'detection_slots': int(slots),
      'mask_branch_overhead_flops': round(
          (fixed + masks_per_image * per_instance) / detection_only, 4),
      'mask_branch_overhead_all_slots_flops': round(
          (every_slot - detection_only) / detection_only, 4),
  }


def train_step_ratio(build_step, configs, warmup_steps, steps,
                     valid_only=None, all_slots=None):
  """Train step, mask head on weighted instances vs on every slot.

  Args:
    build_step: ``configs -> step_fn``: builds a training state from a
      configs dict and returns the call of one training step on the fixed
      benchmark batch.
    configs: the pipeline's configs dict (a Deep-MAC model).
    warmup_steps / steps: untimed and timed rounds.
    valid_only: optional step call of a model that runs the head on the
      weighted instances only (built here when None).
    all_slots: optional step call of a model that runs it on every slot
      (built here when None).

  Returns:
    dict: ``train_step_valid_only_over_all_slots`` and both figures.
  """
  steps_by_slots = {'valid_only': valid_only, 'all_slots': all_slots}
  for name, slots in (('valid_only', 'SELECTED_SLOTS'),
                      ('all_slots', 'ALL_SLOTS')):
    if steps_by_slots.get(name) is None:
      variant = dict(configs)
      variant['model'] = with_mask_settings(configs['model'], slots=slots)
      steps_by_slots[name] = build_step(variant)
  figures = timing.time_interleaved(steps_by_slots, warmup_steps, steps)
  ratio = figures['valid_only']['median_ms'] / figures['all_slots'][
      'median_ms']
  return {'train_step_valid_only_over_all_slots': round(ratio, 4),
          'timing': figures}


def traced_with_static_shapes(fn, all_slots):
  """``fn`` called (so traced, on its first call) inside
  ``selected_slots.default_static_shapes(all_slots)``: e.g. a
  ``SLOTS_AUTO`` model's step in its TPU (all-slots) form on a CPU."""
  def call():
    with selected_slots.default_static_shapes(all_slots):
      return fn()
  return call


def train_steps_by_slots(model_config, step_fn, make_step):
  """(valid-only step, all-slots step) of the config's own training state
  where its ``mask_head_slots`` allows (None: build another state).

  Args:
    model_config: the Deep-MAC ``DetectionModel`` message.
    step_fn: the config's training step call.
    make_step: factory of further step calls on the same model/optimizer.
  """
  settings = model_config.center_net.deepmac_mask_estimation
  kinds = type(settings)
  if settings.mask_head_slots == kinds.SELECTED_SLOTS:
    return step_fn, None
  if settings.mask_head_slots == kinds.ALL_SLOTS:
    return None, step_fn
  # SLOTS_AUTO: step_fn was traced in the device's form; the other form
  # is a second step function on the same model and optimizer.
  if selected_slots.static_shapes_by_default():
    return traced_with_static_shapes(make_step(), False), step_fn
  return step_fn, traced_with_static_shapes(make_step(), True)


def _overhead(ms, base_ms):
  return round(ms / base_ms - 1.0, 4) if base_ms else None
