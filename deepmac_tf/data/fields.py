"""Names shared by the data path: tf.Example feature keys and input tensors.

``TfExampleFields`` are the OD API's on-disk keys (what COCO conversion and the
synthetic dataset write, what the decoder reads). ``InputFields`` name the
tensors the input pipeline hands to models, with their shapes after batching.
"""


class TfExampleFields:
  """OD API tf.Example feature keys."""
  IMAGE_ENCODED = 'image/encoded'
  IMAGE_FORMAT = 'image/format'
  HEIGHT = 'image/height'
  WIDTH = 'image/width'
  FILENAME = 'image/filename'
  SOURCE_ID = 'image/source_id'
  KEY_SHA256 = 'image/key/sha256'
  BBOX_XMIN = 'image/object/bbox/xmin'
  BBOX_XMAX = 'image/object/bbox/xmax'
  BBOX_YMIN = 'image/object/bbox/ymin'
  BBOX_YMAX = 'image/object/bbox/ymax'
  CLASS_LABEL = 'image/object/class/label'
  CLASS_TEXT = 'image/object/class/text'
  IS_CROWD = 'image/object/is_crowd'
  AREA = 'image/object/area'
  DIFFICULT = 'image/object/difficult'
  GROUP_OF = 'image/object/group_of'
  WEIGHT = 'image/object/weight'
  # PNG_MASKS: one single-channel PNG (values 0/1, image-sized) per instance.
  # NUMERICAL_MASKS: a float list of num_instances * height * width values.
  MASK = 'image/object/mask'
  # Optional float per instance: 0 marks an instance whose mask is unusable.
  MASK_WEIGHT = 'image/object/mask/weight'


class InputFields:
  """Keys of the dicts produced by ``deepmac_tf.data`` input pipelines.

  Shapes are per batch; ``N`` = ``max_number_of_boxes`` (padded), ``H, W`` =
  the model input size.
  """
  IMAGE = 'image'                      # [B, H, W, 3] float32, 0..255
  TRUE_IMAGE_SHAPE = 'true_image_shape'  # [B, 3] int32, unpadded resized shape
  ORIGINAL_IMAGE_SHAPE = 'original_image_spatial_shape'  # [B, 2] int32
  SOURCE_ID = 'source_id'              # [B] string
  KEY = 'key'                          # [B] string (sha256 of the encoded image)
  FILENAME = 'filename'                # [B] string
  BOXES = 'groundtruth_boxes'          # [B, N, 4] float32, normalized yxyx
  CLASSES = 'groundtruth_classes'      # [B, N] int32, 1-based label-map ids
  WEIGHTS = 'groundtruth_weights'      # [B, N] float32, 0 for padding
  IS_CROWD = 'groundtruth_is_crowd'    # [B, N] bool
  AREA = 'groundtruth_area'            # [B, N] float32
  INSTANCE_MASKS = 'groundtruth_instance_masks'  # [B, N, H, W] float32 0/1
  # [B, N] float32: 1 where the instance has a mask and its class may train
  # the mask head (partial supervision), 0 otherwise (incl. padding).
  MASK_WEIGHTS = 'groundtruth_instance_mask_weights'
  NUM_BOXES = 'num_groundtruth_boxes'  # [B] int32, before padding
