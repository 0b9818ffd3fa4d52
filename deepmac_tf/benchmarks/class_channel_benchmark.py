"""Benchmark figures of class-specific masks (``scripts/benchmark.py``):
the mask logits of each instance's class channel (``ops.class_channel``, what
the model computes) against projecting to every class and picking one (the
textbook class-specific head), with the gradient, timed in turn.

At LVIS size (1,203 classes, 28 x 28 masks, 256 features) the all-channel
tensor of 128 instances alone is 128 * 1203 * 28 * 28 * 4 bytes = 483 MB
(and its gradient as much again); the class channel is 0.4 MB.
"""

import tensorflow as tf

from deepmac_tf import graph_functions
from deepmac_tf.benchmarks import timing
from deepmac_tf.ops import class_channel

_MIB = 1024.0 * 1024.0


def _all_channels_then_pick(features, weights, biases, classes):
  every = tf.einsum('nhwd,cd->nhwc', features, weights) + biases
  return tf.gather(every, classes[:, None], axis=-1, batch_dims=1)[..., 0]


def _with_gradient(logits_fn, features, weights, biases, classes):
  with tf.GradientTape() as tape:
    tape.watch([features, weights])
    loss = tf.reduce_mean(tf.sigmoid(logits_fn(features, weights, biases,
                                               classes)))
  return tape.gradient(loss, [features, weights])


def class_specific_mask_figures(num_classes, mask_size, num_features,
                                num_instances, warmup_steps=1, steps=3,
                                seed=0):
  """Times the class-channel projection against all channels + pick.

  Args:
    num_classes: C.
    mask_size: M.
    num_features: D, the features the per-class 1x1 projection reads.
    num_instances: N instances with a mask in one step.
    warmup_steps / steps: untimed and timed rounds.
    seed: random inputs.

  Returns:
    dict: both figures (``median_ms`` ...), ``ratio_class_channel`` (ours /
    all channels), the largest logits tensor of each in MiB, and the sizes.
  """
  features = tf.random.stateless_normal(
      [num_instances, mask_size, mask_size, num_features], [seed, 1])
  weights = tf.random.stateless_normal([num_classes, num_features],
                                       [seed, 2])
  biases = tf.zeros([num_classes])
  classes = tf.random.stateless_uniform([num_instances], [seed, 3], 0,
                                        num_classes, tf.int32)
  fns = {}
  for name, logits_fn in (
      ('class_channel', class_channel.class_channel_logits),
      ('all_channels_then_pick', _all_channels_then_pick)):
    step = graph_functions.function(lambda f=logits_fn: _with_gradient(
        f, features, weights, biases, classes))
    fns[name] = step
  figures = timing.time_interleaved(fns, warmup_steps, steps)
  pixels = num_instances * mask_size * mask_size * 4 / _MIB
  return {
      'num_classes': num_classes, 'mask_size': mask_size,
      'num_features': num_features, 'num_instances': num_instances,
      'class_channel': figures['class_channel'],
      'all_channels_then_pick': figures['all_channels_then_pick'],
      'ratio_class_channel': round(
          figures['class_channel']['median_ms'] /
          max(figures['all_channels_then_pick']['median_ms'], 1e-9), 4),
      'logits_mib': {'class_channel': round(pixels, 2),
                     'all_channels': round(pixels * num_classes, 2)},
  }
