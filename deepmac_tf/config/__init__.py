"""Pipeline-config utilities mirroring the OD API's ``config_util``."""

from deepmac_tf.config.config_util import create_configs_from_pipeline_proto
from deepmac_tf.config.config_util import create_pipeline_proto_from_configs
from deepmac_tf.config.config_util import get_configs_from_pipeline_file
from deepmac_tf.config.config_util import get_image_resizer_config
from deepmac_tf.config.config_util import get_model_message
from deepmac_tf.config.config_util import get_number_of_classes
from deepmac_tf.config.config_util import get_pipeline_config_from_file
from deepmac_tf.config.config_util import get_pipeline_config_from_text
from deepmac_tf.config.config_util import pipeline_config_to_text
from deepmac_tf.config.config_util import save_pipeline_config
from deepmac_tf.errors import ConfigError
