"""Loss normalizers over the global batch under ``tf.distribute``.

Each replica computes its loss on its share of the global batch, and the
training step averages the replicas (gradients of ``loss / replicas``,
summed). A per-replica normalizer (instances on *this* replica) then weighs
replicas unequally: a replica whose images hold one mask-supervised instance
counts as much as one holding fifty, and one holding none contributes 0,
halving the mean. ``cross_replica_normalizer`` all-reduces the count, so
that the mean over replicas of ``sum_r / normalizer`` is exactly
``sum over the global batch / max(count over the global batch, minimum)``,
the one-device loss of the same global batch.
"""

import tensorflow as tf


def cross_replica_normalizer(count, minimum=1.0):
  """``max(sum of count over replicas, minimum) / number of replicas``.

  Outside a multi-replica context (one device, evaluation, eager tests) this
  is ``max(count, minimum)``.

  Args:
    count: scalar (any numeric dtype): this replica's instances, weights...
    minimum: lower bound of the global count (avoids dividing by 0).

  Returns:
    float32 scalar, no gradient.
  """
  count = tf.stop_gradient(tf.cast(count, tf.float32))
  context = tf.distribute.get_replica_context()
  replicas = context.num_replicas_in_sync if context is not None else 1
  if replicas == 1:
    return tf.maximum(count, minimum)
  total = context.all_reduce(tf.distribute.ReduceOp.SUM, count)
  return tf.maximum(total, minimum) / float(replicas)
