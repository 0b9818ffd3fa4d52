"""benchmarks/flops.py: exact FLOP counts of traced graphs."""

import os
import sys

import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from deepmac_tf.benchmarks import flops  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_matmul_and_conv_counts_are_the_textbook_ones():
  matmul = flops.function_flops(lambda a, b: tf.matmul(a, b),
                                tf.TensorSpec([2, 3]), tf.TensorSpec([3, 4]))
  assert matmul == 2 * 2 * 3 * 4
  kernel = tf.ones([3, 3, 5, 7])
  conv = flops.function_flops(
      lambda x: tf.nn.conv2d(x, kernel, 1, 'SAME'),
      tf.TensorSpec([1, 8, 8, 5]))
  assert conv == 2 * 8 * 8 * 7 * 3 * 3 * 5


def test_work_the_outputs_do_not_need_is_not_counted():
  def fn(a, b):
    unused = tf.matmul(b, a)  # [3, 3] x [3, 2]: pruned when run.
    del unused
    return tf.matmul(a, b)
  assert flops.function_flops(fn, tf.TensorSpec([2, 3]),
                              tf.TensorSpec([3, 2])) == 2 * 2 * 3 * 2


def test_a_variable_kernel_is_counted():
  weights = tf.Variable(tf.ones([4, 6]))
  assert flops.function_flops(lambda x: tf.matmul(x, weights),
                              tf.TensorSpec([5, 4])) == 2 * 5 * 4 * 6
