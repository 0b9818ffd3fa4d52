"""The OD API's ``--input_type`` names, importable without TensorFlow (so
``exporter_main_v2.py`` defines its flags and answers ``--help`` at once).

``serving_inputs`` defines the same names with their specs; a test checks
that the two lists agree.
"""

INPUT_TYPES = ('image_tensor', 'float_image_tensor',
               'encoded_image_string_tensor', 'tf_example',
               'image_and_boxes_tensor')
