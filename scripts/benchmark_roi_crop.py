"""Times the crop-and-resize formulations used by the Deep-MAC mask branch.

Prints one JSON object: milliseconds per call (median of --repeats) of the
forward crop and of forward + gradient w.r.t. the feature map, for
``roi_crop.crop_and_resize`` ('gather' and 'matmul', eager-graph and
``jit_compile=True``) and for ``tf.image.crop_and_resize`` (no XLA kernel, so
graph mode only). A benchmark, not a test: it never fails on speed.

  python scripts/benchmark_roi_crop.py --batch 8 --boxes 100 --crop 32 \
      --channels 16 --map_sizes 32,128
"""

import json
import time

from absl import flags

from deepmac_tf import cli

# TensorFlow (and what imports it) is imported in main, after flag parsing,
# so that --help answers at once.
np = tf = roi_crop = None

flags.DEFINE_integer('batch', 8, 'Images per batch.')
flags.DEFINE_integer('boxes', 100, 'Boxes per image.')
flags.DEFINE_integer('crop', 32, 'Crop size S.')
flags.DEFINE_integer('channels', 16, 'Feature channels E.')
flags.DEFINE_string('map_sizes', '32,128', 'Comma-separated map sizes h=w.')
flags.DEFINE_integer('repeats', 10, 'Timed calls per variant.')
FLAGS = flags.FLAGS


def _time(fn, *args):
  fn(*args)  # trace / compile
  times = []
  for _ in range(FLAGS.repeats):
    start = time.perf_counter()
    result = fn(*args)
    tf.nest.map_structure(lambda t: t.numpy(), result)
    times.append(time.perf_counter() - start)
  return round(1000 * float(np.median(times)), 2)


def _variants(crop):
  """name -> (forward fn, jit ok)."""
  def ours(method):
    return lambda f, b: roi_crop.crop_and_resize(f, b, crop, method=method)

  def tf_image(f, b):
    batch, num = tf.shape(b)[0], tf.shape(b)[1]
    flat = tf.reshape(b, [-1, 4])
    index = tf.repeat(tf.range(batch), num)
    return tf.image.crop_and_resize(f, flat, index, [crop, crop])

  return {'gather': (ours('gather'), True), 'matmul': (ours('matmul'), True),
          'tf.image.crop_and_resize': (tf_image, False)}


def main(_):
  global np, tf, roi_crop  # pylint: disable=global-statement
  import numpy as np  # pylint: disable=g-import-not-at-top,redefined-outer-name
  import tensorflow as tf  # pylint: disable=g-import-not-at-top,redefined-outer-name
  from deepmac_tf.ops import roi_crop  # pylint: disable=g-import-not-at-top,redefined-outer-name
  from deepmac_tf import graph_functions  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  results = {'shape': [FLAGS.batch, FLAGS.boxes, FLAGS.crop, FLAGS.crop,
                       FLAGS.channels], 'ms': {}}
  for size in (int(s) for s in FLAGS.map_sizes.split(',')):
    features = tf.constant(rng.normal(
        size=[FLAGS.batch, size, size, FLAGS.channels]), tf.float32)
    corners = np.sort(rng.uniform(size=[FLAGS.batch, FLAGS.boxes, 2, 2]),
                      axis=2)
    boxes = tf.constant(corners.transpose(0, 1, 3, 2).reshape(
        FLAGS.batch, FLAGS.boxes, 4)[..., [0, 2, 1, 3]], tf.float32)
    for name, (forward, jit_ok) in _variants(FLAGS.crop).items():
      def train(f, b, forward=forward):
        with tf.GradientTape() as tape:
          tape.watch(f)
          loss = tf.reduce_sum(tf.square(forward(f, b)))
        return tape.gradient(loss, f)
      for jit in ((False, True) if jit_ok else (False,)):
        key = f'map{size}/{name}/{"xla" if jit else "graph"}'
        results['ms'][key + '/forward'] = _time(
            graph_functions.function(forward, jit_compile=jit), features, boxes)
        results['ms'][key + '/forward_backward'] = _time(
            graph_functions.function(train, jit_compile=jit), features, boxes)
  print(json.dumps(results, indent=1))


if __name__ == '__main__':
  cli.run(main)
