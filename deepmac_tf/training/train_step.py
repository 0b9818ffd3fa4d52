"""One distributed training step: forward, losses, gradients, update.

Per replica: ``normalize_images -> predict(training=True) -> loss`` on its share of
the global batch; ``Loss/total_loss`` = sum of the loss terms (+
``Loss/regularization_loss``). Gradients come from ``total / num_replicas``
so that the optimizer's cross-replica SUM gives the gradient of the mean
over replicas, i.e. of the global batch. The reported losses are the mean of
the replicas' unscaled losses.
"""

import re

import tensorflow as tf

from deepmac_tf import graph_functions
from deepmac_tf.data.fields import InputFields
from deepmac_tf.errors import ConfigError
from deepmac_tf.meta_architectures import detection_model

TOTAL_LOSS = detection_model.TOTAL_LOSS
REGULARIZATION_LOSS = detection_model.REGULARIZATION_LOSS


def select_trainable_variables(variables, update_patterns=(),
                               freeze_patterns=()):
  """OD API ``update_trainable_variables`` / ``freeze_variables`` filters.

  Args:
    variables: candidate ``tf.Variable`` list.
    update_patterns: regexes; when given, only matching names train.
    freeze_patterns: regexes; matching names do not train.

  Raises:
    ConfigError: the filters leave nothing to train.
  """
  selected = list(variables)
  if update_patterns:
    selected = [v for v in selected
                if any(re.search(p, v.name) for p in update_patterns)]
  if freeze_patterns:
    selected = [v for v in selected
                if not any(re.search(p, v.name) for p in freeze_patterns)]
  if not selected:
    raise ConfigError('train_config.update_trainable_variables / '
                      'freeze_variables: no trainable variable is left.')
  return selected


def compute_losses(model, batch, add_regularization_loss=True):
  """Loss dict of one (per-replica) batch, with ``Loss/total_loss``.

  Args:
    model: a meta-architecture.
    batch: ``InputFields`` dict; ``image`` is [B, H, W, 3] float32.
    add_regularization_loss: add ``model.regularization_losses()``.

  Returns:
    {loss name: float32 scalar}.
  """
  preprocessed = model.normalize_images(batch[InputFields.IMAGE])
  predictions = model.predict(preprocessed, training=True)
  return detection_model.loss_dict(model, predictions, batch,
                                   add_regularization_loss, training=True)


class DistributedTrainStep:
  """``step(distributed_batch) -> {loss name: mean over replicas}``.

  Increments ``step_variable`` by one per call. ``jit_compile`` is off by
  default (XLA gains nothing on CPU and not every op has a kernel).
  """

  def __init__(self, strategy, model, optimizer, step_variable,
               trainable_variables=None, add_regularization_loss=True,
               jit_compile=False):
    self._strategy = strategy
    self._model = model
    self._optimizer = optimizer
    self._step = step_variable
    self._variables = trainable_variables
    self._add_regularization_loss = add_regularization_loss
    self._function = graph_functions.function(self._distributed_step,
                                 jit_compile=jit_compile or None)

  @property
  def trainable_variables(self):
    if self._variables is None:
      return self._model.trainable_variables
    return self._variables

  def _replica_step(self, batch):
    num_replicas = tf.distribute.get_replica_context().num_replicas_in_sync
    variables = self.trainable_variables
    with tf.GradientTape() as tape:
      losses = compute_losses(self._model, batch,
                              self._add_regularization_loss)
      scaled_total = losses[TOTAL_LOSS] / float(num_replicas)
    gradients = tape.gradient(scaled_total, variables)
    pairs = [(g, v) for g, v in zip(gradients, variables) if g is not None]
    self._optimizer.apply_gradients(pairs)
    return losses

  def _distributed_step(self, batch):
    per_replica = self._strategy.run(self._replica_step, args=(batch,))
    self._step.assign_add(1)
    return {name: self._strategy.reduce(tf.distribute.ReduceOp.MEAN, value,
                                        axis=None)
            for name, value in per_replica.items()}

  def __call__(self, distributed_batch):
    return self._function(distributed_batch)
