"""Running mask heads on a batch of zero instances.

With oneDNN (TensorFlow's default CPU kernels) a ``Conv2D`` on an empty batch
returns a wrongly shaped result on some CPUs, and the following bias add
fails ("Must provide as many biases as the last dimension ..."): seen on AMD
EPYC with TF 2.20, not on Intel. A detector that finds nothing, or a
box-prompted call with no boxes, is a normal case, so mask heads pad an empty
batch to one all-zero instance and drop it from the output. A non-empty batch
is left untouched (no pad op when the static size is known and positive), so
training statistics and XLA shapes are unchanged.
"""

import tensorflow as tf
import tf_keras


def pad_if_empty(tensor):
  """[N, ...] -> ([max(N, 1), ...], N).

  Args:
    tensor: a tensor whose first dimension is the instance count N (may be
      0 or unknown until run time).

  Returns:
    (the tensor with one zero row appended when N == 0, the scalar int32 N
    to slice the head's output back with ``output[:N]``).
  """
  static = tensor.shape[0]
  count = tf.shape(tensor)[0]
  if static is not None and static > 0:
    return tensor, count
  extra = tf.maximum(1 - count, 0)
  paddings = tf.concat([[[0, extra]],
                        tf.zeros([tensor.shape.rank - 1, 2], tf.int32)], 0)
  padded = tf.pad(tensor, paddings)
  padded.set_shape([None] + tensor.shape[1:])  # keep the static crop dims
  return padded, count


class EmptyBatchSafe:
  """Mixin for Keras layers / models whose first input is [N, ...] crops.

  Put it first in the bases (``class Head(EmptyBatchSafe,
  tf_keras.layers.Layer)``): calls with N == 0 run on one zero instance and
  return ``output[:0]`` (every output of a nested structure); when the
  batch is statically empty the stand-in runs with ``training=False`` so
  batch-norm statistics stay put (a batch that is only empty at run time
  inside a graph runs in the caller's mode: never the case for training
  batches, whose instance count is fixed by padding). Symbolic
  (functional-API) inputs and non-empty static batches pass straight
  through; variable and checkpoint names are unaffected.
  """

  def __call__(self, inputs, *args, **kwargs):
    if not tf.is_tensor(inputs) or tf_keras.backend.is_keras_tensor(inputs):
      return super().__call__(inputs, *args, **kwargs)
    padded, count = pad_if_empty(inputs)
    if padded is inputs:
      return super().__call__(inputs, *args, **kwargs)
    if inputs.shape[0] == 0:
      # Known to be empty: the stand-in instance must not move batch-norm
      # statistics, so it runs in inference mode (its output is dropped).
      if args:
        args = (False,) + tuple(args[1:])
      else:
        kwargs['training'] = False
    outputs = super().__call__(padded, *args, **kwargs)
    return tf.nest.map_structure(lambda t: t[:count], outputs)
