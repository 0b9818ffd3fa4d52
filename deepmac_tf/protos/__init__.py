"""Generated protobuf modules of the pipeline-config schema.

Never edit the ``*_pb2.py`` files by hand: edit ``protos/*.proto`` and run
``python -m deepmac_tf.protos.generate``.
"""
