"""SavedModel export with OD API serving signatures (``exporter_main_v2``).

``export_inference_graph(input_type, pipeline_config, trained_checkpoint_dir,
output_directory, add_reframed_masks=False)`` is the entry point; see
``exporter`` for the written layout and ``serving_module`` for the
signatures and their outputs.
"""


from deepmac_tf.export.input_types import INPUT_TYPES


def __getattr__(name):
  # TensorFlow is imported only when the exporter is used.
  if name == 'export_inference_graph':
    from deepmac_tf.export.exporter import export_inference_graph  # pylint: disable=g-import-not-at-top
    return export_inference_graph
  raise AttributeError(name)
