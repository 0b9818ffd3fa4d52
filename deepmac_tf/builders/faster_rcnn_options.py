"""What happens to each field of the OD API messages this project parses:
honoured, accepted with one log line saying why it has no effect here, or a
ConfigError naming it. ``FIELD_HANDLING`` lists every field of
``FasterRcnn``, ``FasterRcnnFeatureExtractor``, ``MaskRCNNBoxPredictor``,
``CenterNet`` (and its ``ObjectCenterParams``, ``ObjectDetection``,
``PredictionHeadParams``, ``CenterNetFeatureExtractor``), ``TrainConfig``,
``EvalConfig``, the image resizers, the optimizers and learning rates,
``InputReader`` and our Deep-MAC / Deep-MARC extensions
(``DeepMACMaskEstimation``, ``DeepMarcMaskHead``, ``WeightTransfer``,
``TeacherStudent``), the layer ``Hyperparams`` (regularizers,
initializers, normalizers), anchor generators, FPN, ``PostProcessing``
(``BatchNonMaxSuppression``), the classification / localization losses,
the ``PreprocessingStep`` catalogue, and the pipeline / model roots: every message reachable from
``TrainEvalPipelineConfig`` through fields that are not refused as a whole
(a test walks them, keeps the table complete and checks the refusals), so
no parsed field is silently ignored. ``check_fields(message, path)`` applies
``NO_EFFECT`` / ``ONLY_DEFAULT`` (at model build, training start, evaluation
start and dataset build); 'refused' fields are refused by the builder of
their part (named in ``REFUSED_BY``).

Also the per-part layer hyperparameters of ``model.faster_rcnn``
(``hyperparams_builder``) and the second-stage box predictor's options, as
``MaskRCNNParams`` keyword arguments.
"""

import dataclasses
import math

from deepmac_tf.backbones import deepmarc_backbones
from deepmac_tf.backbones import faster_rcnn_keras
from deepmac_tf.builders import hyperparams_builder
from deepmac_tf.data.augmentation import builder as augmentation_builder
from deepmac_tf.data.augmentation import catalogue as augmentation_catalogue
from deepmac_tf.errors import ConfigError
from deepmac_tf.layers.layer_hyperparams import LayerHyperparams
from deepmac_tf.mask_heads import fcn_heads
from deepmac_tf.protos import hyperparams_pb2
from deepmac_tf.protos import input_reader_pb2
from deepmac_tf.protos import train_pb2

F = 'model.faster_rcnn'
_P = f'{F}.second_stage_box_predictor.mask_rcnn_box_predictor'
HONOURED = 'honoured'

# Implementation choices of the OD API for TPUs / static shapes, which this
# model makes in its own way whatever the value, and TF1-only options.

# DeepMACMaskEstimation's augmented self-supervision settings (the loss is
# not trained here: they have no effect; its weight > 0 is refused).
_AUGMENTED_SELF_SUPERVISION_FIELDS = (
    'augmented_self_supervision_max_translation',
    'augmented_self_supervision_flip_probability',
    'augmented_self_supervision_warmup_start',
    'augmented_self_supervision_warmup_steps',
    'augmented_self_supervision_loss',
    'augmented_self_supervision_scale_min',
    'augmented_self_supervision_scale_max')

NO_EFFECT = {
    'inplace_batchnorm_update': 'Keras batch norm updates its statistics in '
                                'the training call (TF2; the OD API TF2 also '
                                'ignores it)',
    'use_matmul_crop_and_resize': "the ROI crop (Model Garden's "
                                  'multilevel_crop_and_resize) is a gather + '
                                  'matmul bilinear crop on every device; '
                                  'the numbers are the same',
    'use_matmul_gather_in_matcher': "the anchor / ROI matchers (Model "
                                    "Garden's) gather with static shapes on "
                                    'every device',
    'use_static_balanced_label_sampler': "the RPN and ROI samplers (Model "
                                         "Garden's) are static-shape "
                                         'balanced samplers already',
    'use_static_shapes': 'every tensor of the model has a static shape '
                         '(padded proposals and detections)',
    'use_static_shapes_for_eval': 'every tensor of the model has a static '
                                  'shape (padded proposals and detections)',
    'use_partitioned_nms_in_first_stage': "the RPN NMS is Model Garden's "
                                          'padded NMS on every device',
    'resize_masks': 'the input pipeline resizes groundtruth masks with '
                    'their image; mask targets are cropped from them',
    'first_stage_features_stride': 'the stride follows from the backbone '
                                   '(16 for single-level backbones, checked)',
    'pad_to_multiple': 'the image resizer gives the input size',
    # CenterNet
    'compute_heatmap_sparse': 'the center heatmap targets are computed '
                              'densely (the OD API\'s sparse path is a '
                              'memory trade-off giving the same targets)',
    # TrainConfig (TF1 trainer / input-queue options; the OD API TF2
    # training loop does not read them either)
    'sync_replicas': "tf.distribute averages every replica's gradients at "
                     'every step (TF1 SyncReplicasOptimizer option; the OD '
                     'API TF2 ignores it too)',
    'replicas_to_aggregate': "tf.distribute averages every replica's "
                             'gradients at every step (TF1 '
                             'SyncReplicasOptimizer option; the OD API TF2 '
                             'ignores it too)',
    'startup_delay_steps': 'every worker starts at once under '
                           'tf.distribute (TF1 option; the OD API TF2 '
                           'ignores it too)',
    'keep_checkpoint_every_n_hours': 'checkpoints are kept by '
                                     '--checkpoint_max_to_keep (TF1 Saver '
                                     'option; the OD API TF2 ignores it too)',
    'load_all_detection_checkpoint_vars': 'fine-tuning restores every '
                                          'variable of the chosen objects '
                                          'that the checkpoint holds with '
                                          'the same shape (TF1 option)',
    'batch_queue_capacity': 'input is a tf.data pipeline (TF1 queue option)',
    'num_batch_queue_threads': 'input is a tf.data pipeline (TF1 queue '
                               'option)',
    'prefetch_queue_capacity': 'input is a tf.data pipeline (TF1 queue '
                               'option)',
    'unpad_groundtruth_tensors': 'groundtruth stays padded to '
                                 'max_number_of_boxes with a validity mask; '
                                 'the losses skip the padding either way',
    'summarize_gradients': 'gradient histograms are not written (TF1 '
                           'option; the OD API TF2 ignores it too)',
    'retain_original_images': 'original-size images are not kept; summaries '
                              'and evaluation images show the model\'s '
                              'input images',
    # EvalConfig (TF1 evaluator options)
    'num_examples': 'evaluation reads the eval input to its end (one '
                    'epoch; --sample_1_of_n_eval_examples thins it)',
    'eval_interval_secs': 'model_main_tf2.py evaluates each new checkpoint '
                          'as it appears (--eval_timeout ends the wait)',
    'max_evals': 'continuous evaluation stops at the last checkpoint or '
                 '--eval_timeout',
    'save_graph': 'TF2 has no graph to save (TF1 option)',
    'visualization_export_dir': 'evaluation images go to the TensorBoard '
                                'summaries (TF1 option)',
    'eval_master': 'no TF1 session master in TF2',
    'export_path': 'detections are not exported by evaluation (TF1 '
                   'option; use the exporter / scripts/segment.py)',
    'ignore_groundtruth': 'evaluation always compares with groundtruth '
                          '(TF1 option; use the exporter for inference)',
    'skip_scores': 'evaluation images always show scores (TF1 option)',
    'skip_labels': 'evaluation images always show labels (TF1 option)',
    'visualize_groundtruth_boxes': 'evaluation images always show '
                                   'groundtruth, in their own panel (TF1 '
                                   'option)',
    'groundtruth_box_visualization_color': 'groundtruth has its own panel '
                                           'in evaluation images (TF1 '
                                           'option)',
    'keep_image_id_for_visualization_export': 'no visualization export '
                                              '(TF1 option)',
    # InputReader
    'name': 'evaluation summaries go to model_dir/eval (eval_<i> for the '
            "i-th eval_input_reader), not to a folder named after the reader",
    'num_parallel_batches': 'decoding runs with tf.data.AUTOTUNE '
                            'parallelism (the records and their order are '
                            'the same)',
    'num_parallel_map_calls': 'decoding runs with tf.data.AUTOTUNE '
                              'parallelism (the records and their order '
                              'are the same)',
    'prefetch_size': 'batches are prefetched by num_prefetch_batches (the '
                     'OD API deprecated prefetch_size for it)',
    'queue_capacity': 'input is a tf.data pipeline (TF1 queue option)',
    'min_after_dequeue': 'input is a tf.data pipeline (TF1 queue option)',
    'include_source_id': 'every decoded example carries its source_id '
                         'already',
    'drop_remainder': 'training drops the last partial batch (its input '
                      'repeats) and evaluation keeps every example, '
                      'whatever the value',
    # DeepMACMaskEstimation: settings of weak losses this library does not
    # train (their loss weights > 0 are refused by deepmac_builder).
    **{name: 'it sets the feature-consistency loss, which is not trained '
             'here (feature_consistency_loss_weight > 0 is refused)'
       for name in ('feature_consistency_threshold',
                    'feature_consistency_dilation',
                    'feature_consistency_warmup_steps',
                    'feature_consistency_warmup_start',
                    'feature_consistency_type',
                    'feature_consistency_comparison')},
    'retain_original_image_additional_channels': (
        'images have no additional channels here (num_additional_channels '
        'must be 0)'),
    'image_classes_field_map_empty_to_ones': (
        'evaluation does not read image-level class labels'),
    'run_fine_tune_checkpoint_dummy_computation': (
        "the model's variables are built before any checkpoint is restored, "
        'whatever the value'),
    # Hyperparams / anchors / post-processing / losses
    'regularize_depthwise': 'these layers have no depthwise convolutions',
    'normalize_coordinates': 'anchors are matched in pixels inside the model '
                             'and proposals / detections come out '
                             'normalized either way',
    'use_partitioned_nms': "the detection NMS is Model Garden's padded NMS "
                           'on every device',
    'use_hard_nms': 'NMS is hard always (soft_nms_sigma must be 0)',
    'use_cpu_nms': 'the NMS runs where the model runs (a device-placement '
                   'option; the boxes are the same)',
    'anchorwise_output': 'losses are computed per anchor / pixel and reduced '
                         'as the OD API does (the OD API ignores the field '
                         'too)',
    **{name: 'it sets the augmented self-supervision loss, which is not '
             'trained here (augmented_self_supervision_loss_weight > 0 is '
             'refused)'
       for name in _AUGMENTED_SELF_SUPERVISION_FIELDS},
}
# Fields that must keep a value (name -> (allowed value, why)).
ONLY_DEFAULT = {
    'first_stage_atrous_rate': (1, "Model Garden's RPN head has no atrous "
                                'convolution'),
    'first_stage_box_predictor_kernel_size': (
        3, "Model Garden's RPN head convolution is 3x3"),
    'return_raw_detections_during_predict': (
        False, 'predict returns proposals; detections come from '
        'postprocess'),
    'output_final_box_features': (False, 'detections carry no box '
                                  'features'),
    'output_final_box_rpn_features': (False, 'detections carry no box '
                                      'features'),
    'use_combined_nms_in_first_stage': (
        False, "the RPN NMS is Model Garden's per-level padded NMS"),
    'box_code_size': (4, 'boxes are encoded with 4 numbers'),
    'predict_keypoints': (False, 'keypoints are out of scope'),
    # TrainConfig
    'fine_tune_checkpoint_version': (
        train_pb2.CheckpointVersion.V2, 'fine-tune checkpoints are TF2 '
        'object-based checkpoints (V2), as in the OD API TF2'),
    'bias_grad_multiplier': (0.0, 'gradients are not rescaled per variable '
                             '(a TF1 trainer option)'),
    'merge_multiple_label_boxes': (False, 'each groundtruth box has one '
                                   'class; boxes are not merged'),
    'use_multiclass_scores': (False, 'classification targets come from '
                              'groundtruth_classes, not multiclass scores'),
    # EvalConfig
    'recall_lower_bound': (0.0, 'COCO metrics are computed over the full '
                           'recall range'),
    'recall_upper_bound': (1.0, 'COCO metrics are computed over the full '
                           'recall range'),
    'skip_predictions_for_unlabeled_class': (
        False, 'every detection is evaluated (an Open Images evaluator '
        'option)'),
    'force_no_resize': (False, 'evaluation images go through the '
                        "model's image_resizer, as in training"),
    'use_dummy_loss_in_eval': (False, "evaluation computes the model's "
                               'losses'),
    # InputReader (data the models here do not read)
    'num_additional_channels': (0, 'the models take 3-channel images'),
    'num_keypoints': (0, 'keypoints are out of scope'),
    'keypoint_type_weight': ([], 'keypoints are out of scope'),
    'use_keypoint_label_map': (False, 'keypoints are out of scope'),
    'load_keypoint_depth_features': (False, 'keypoints are out of scope'),
    'load_multiclass_scores': (False, 'classification targets come from '
                               'groundtruth_classes, not multiclass scores'),
    'load_context_features': (False, 'context features (context R-CNN) are '
                              'out of scope'),
    'load_context_image_ids': (False, 'context features (context R-CNN) '
                               'are out of scope'),
    'load_dense_pose': (False, 'DensePose is out of scope'),
    'load_track_id': (False, 'tracking is out of scope'),
    'expand_labels_hierarchy': (False, 'labels are not expanded through an '
                                'Open Images hierarchy'),
    'input_type': (input_reader_pb2.InputType.TF_EXAMPLE,
                   'records are tf.train.Example'),
    'frame_index': (-1, 'records are single images, not sequences'),
    'sample_from_datasets_weights': (
        [], 'every input_path is read as one dataset (files interleaved), '
        'not sampled with weights'),
    # PostProcessing / BatchNonMaxSuppression / losses
    'logit_scale': (1.0, 'logits are not divided by a temperature (the box '
                    "classifier's softmax and the scores use the raw "
                    'logits)'),
    'use_class_agnostic_nms': (False, 'Deep-MARC runs per-class NMS (one '
                               'class per box)'),
    'max_classes_per_detection': (1, 'Deep-MARC runs per-class NMS (one '
                                  'class per box)'),
    'soft_nms_sigma': (0.0, "Model Garden's NMS is hard NMS; soft NMS would "
                       'change the scores'),
    'use_combined_nms': (False, "the detection NMS is Model Garden's "
                         'per-class NMS'),
    'change_coordinate_frame': (True, 'detections are given in the image '
                                'window, normalized'),
}
# Fields a part's builder refuses with a ConfigError naming them (when set
# to anything but their default): message -> {field: where}.
REFUSED_BY = {
    'CenterNet': {
        name: 'model_builder._check_center_net_options' for name in (
            'mask_estimation_task', 'keypoint_label_map_path',
            'keypoint_estimation_task', 'densepose_estimation_task',
            'track_estimation_task', 'temporal_offset_task',
            'post_processing', 'output_prediction_dict')},
    'ObjectCenterParams': {
        'use_labeled_classes': 'center_net_builder',
        'keypoint_weights_for_center': 'center_net_builder'},
    'CenterNetFeatureExtractor': {'use_depthwise': 'model_builder.'
                                                   'build_feature_extractor'},
    'EvalConfig': {'parameterized_metric': 'eval_setup.metrics_sets',
                   'keypoint_edge': 'eval_setup.metrics_sets'},
    'ImageResizer': {name: 'image_resizer.build' for name in (
        'conditional_shape_resizer', 'pad_to_multiple_resizer')},
    # Fields of the refused resizers: the whole resizer is refused.
    'ConditionalShapeResizer': {name: 'image_resizer.build' for name in (
        'condition', 'size_threshold', 'resize_method',
        'convert_to_grayscale')},
    'PadToMultipleResizer': {name: 'image_resizer.build' for name in (
        'multiple', 'convert_to_grayscale')},
    'InputReader': {'external_input_reader':
                    'validation.validate_input_reader'},
    'DeepMACMaskEstimation': {name: 'deepmac_builder.validate_deepmac_params'
                              for name in (
                                  'feature_consistency_loss_weight',
                                  'augmented_self_supervision_loss_weight',
                                  'pointly_supervised_keypoint_loss_weight',
                                  'mask_num_subsamples')},
    'FasterRcnn': {'hard_example_miner': 'faster_rcnn_options.check_options'},
    'PostProcessing': {'calibration_config':
                       'mask_rcnn_builder._post_processing_kwargs'},
    'Hyperparams': {'group_norm': 'hyperparams_builder.from_proto'},
    'Regularizer': {'l1_regularizer': 'mask_rcnn_builder._l2_weight_decay'},
    'L1Regularizer': {'weight': 'mask_rcnn_builder._l2_weight_decay'},
    # Losses no part takes (each part refuses the others: center heatmap
    # center_net_builder, Deep-MAC masks deepmac_builder, box classifier
    # check_options).
    'ClassificationLoss': {name: 'the builder of the part that holds it'
                           for name in ('bootstrapped_sigmoid',
                                        'weighted_sigmoid_focal',
                                        'weighted_logits_softmax')},
    'BootstrappedSigmoidClassificationLoss': {
        name: 'the builder of the part that holds it'
        for name in ('alpha', 'hard_bootstrap', 'anchorwise_output')},
    'SigmoidFocalClassificationLoss': {
        name: 'the builder of the part that holds it'
        for name in ('anchorwise_output', 'gamma', 'alpha')},
    'WeightedSoftmaxClassificationAgainstLogitsLoss': {
        name: 'the builder of the part that holds it'
        for name in ('anchorwise_output', 'logit_scale')},
    # CenterNet boxes: L1 only.
    'LocalizationLoss': {
        name: 'center_net_builder.object_detection_params_from_proto'
        for name in ('weighted_l2', 'weighted_smooth_l1', 'weighted_iou',
                     'weighted_giou')},
    'WeightedL2LocalizationLoss': {
        'anchorwise_output':
            'center_net_builder.object_detection_params_from_proto'},
    'WeightedSmoothL1LocalizationLoss': {
        name: 'center_net_builder.object_detection_params_from_proto'
        for name in ('anchorwise_output', 'delta')},
    # The OD API steps deepmac_tf does not implement (catalogue), and the
    # keypoint permutations of the flips / rotation.
    'PreprocessingStep': {
        name: 'augmentation.builder.build_augmentation_fn'
        for name in augmentation_catalogue.UNSUPPORTED_STEPS},
    **{message: {name: 'augmentation.builder.build_augmentation_fn'}
       for message, name in (
           ('RandomHorizontalFlip', 'keypoint_flip_permutation'),
           ('RandomVerticalFlip', 'keypoint_flip_permutation'),
           ('RandomRotation90', 'keypoint_rot_permutation'))},
}


def _refused(message_name):
  return {name: 'refused' for name in REFUSED_BY[message_name]}


# Every field -> HONOURED, 'no effect' or 'only default'.
FIELD_HANDLING = {
    'FasterRcnn': {
        **{name: HONOURED for name in (
            'number_of_stages', 'num_classes', 'image_resizer',
            'feature_extractor', 'first_stage_anchor_generator',
            'first_stage_box_predictor_conv_hyperparams',
            'first_stage_box_predictor_depth', 'first_stage_minibatch_size',
            'first_stage_positive_balance_fraction',
            'first_stage_nms_score_threshold',
            'first_stage_nms_iou_threshold', 'first_stage_max_proposals',
            'first_stage_localization_loss_weight',
            'first_stage_objectness_loss_weight', 'initial_crop_size',
            'maxpool_kernel_size', 'maxpool_stride',
            'second_stage_box_predictor', 'second_stage_batch_size',
            'second_stage_balance_fraction', 'second_stage_post_processing',
            'second_stage_localization_loss_weight',
            'second_stage_classification_loss_weight',
            'second_stage_mask_prediction_loss_weight',
            'second_stage_classification_loss', 'clip_anchors_to_image',
            'deepmarc_mask_head', 'box_head_num_fcs', 'box_head_fc_dims',
            'box_head_num_convs', 'box_head_num_filters',
            'first_stage_max_proposals_eval')},
        **{name: 'no effect' for name in (
            'inplace_batchnorm_update', 'use_matmul_crop_and_resize',
            'use_matmul_gather_in_matcher',
            'use_static_balanced_label_sampler', 'use_static_shapes',
            'use_static_shapes_for_eval',
            'use_partitioned_nms_in_first_stage', 'resize_masks')},
        **{name: 'only default' for name in (
            'first_stage_atrous_rate', 'first_stage_box_predictor_kernel_size',
            'return_raw_detections_during_predict',
            'output_final_box_features', 'output_final_box_rpn_features',
            'use_combined_nms_in_first_stage')},
        **{name: 'refused' for name in REFUSED_BY['FasterRcnn']},
    },
    'FasterRcnnFeatureExtractor': {
        'type': HONOURED, 'batch_norm_trainable': HONOURED,
        'conv_hyperparams': HONOURED,
        'override_base_feature_extractor_hyperparams': HONOURED,
        'fpn': HONOURED, 'first_stage_features_stride': 'no effect',
        'pad_to_multiple': 'no effect'},
    'MaskRCNNBoxPredictor': {
        'fc_hyperparams': HONOURED, 'use_dropout': HONOURED,
        'dropout_keep_probability': HONOURED, 'box_code_size': 'only default',
        'conv_hyperparams': HONOURED, 'predict_instance_masks': HONOURED,
        'mask_prediction_conv_depth': HONOURED,
        'predict_keypoints': 'only default', 'mask_height': HONOURED,
        'mask_width': HONOURED, 'mask_prediction_num_conv_layers': HONOURED,
        'masks_are_class_agnostic': HONOURED,
        'share_box_across_classes': HONOURED,
        'convolve_then_upsample_masks': HONOURED},
    'CenterNet': {
        **{name: HONOURED for name in (
            'num_classes', 'feature_extractor', 'image_resizer',
            'use_depthwise', 'object_detection_task', 'object_center_params',
            'deepmac_mask_estimation')},
        'compute_heatmap_sparse': 'no effect',
        **{name: 'refused' for name in REFUSED_BY['CenterNet']}},
    'ObjectCenterParams': {
        **{name: HONOURED for name in (
            'object_center_loss_weight', 'classification_loss',
            'heatmap_bias_init', 'min_box_overlap_iou', 'max_box_predictions',
            'center_head_params', 'peak_max_pool_kernel_size')},
        **{name: 'refused' for name in REFUSED_BY['ObjectCenterParams']}},
    # localization_loss: L1 only (another loss is refused by
    # center_net_builder).
    'ObjectDetection': {name: HONOURED for name in (
        'task_loss_weight', 'offset_loss_weight', 'scale_loss_weight',
        'localization_loss', 'scale_head_params', 'offset_head_params')},
    'PredictionHeadParams': {'num_filters': HONOURED,
                             'kernel_sizes': HONOURED},
    # depth_multiplier / use_separable_conv / upsampling_interpolation: by
    # the extractors that declare them (backbones.registry options), refused
    # for the others.
    'CenterNetFeatureExtractor': {
        **{name: HONOURED for name in (
            'type', 'channel_means', 'channel_stds', 'bgr_ordering',
            'depth_multiplier', 'use_separable_conv',
            'upsampling_interpolation')},
        'use_depthwise': 'refused'},
    'TrainConfig': {
        **{name: HONOURED for name in (
            'batch_size', 'data_augmentation_options', 'optimizer',
            'gradient_clipping_by_norm', 'fine_tune_checkpoint',
            'fine_tune_checkpoint_type', 'from_detection_checkpoint',
            'num_steps', 'update_trainable_variables', 'freeze_variables',
            'add_regularization_loss', 'max_number_of_boxes',
            'use_bfloat16')},
        **{name: 'no effect' for name in (
            'sync_replicas', 'replicas_to_aggregate', 'startup_delay_steps',
            'keep_checkpoint_every_n_hours',
            'load_all_detection_checkpoint_vars', 'batch_queue_capacity',
            'num_batch_queue_threads', 'prefetch_queue_capacity',
            'unpad_groundtruth_tensors', 'retain_original_images',
            'summarize_gradients',
            'run_fine_tune_checkpoint_dummy_computation')},
        **{name: 'only default' for name in (
            'fine_tune_checkpoint_version', 'bias_grad_multiplier',
            'merge_multiple_label_boxes', 'use_multiclass_scores')}},
    # eval_instance_masks: the data check then needs masks in the eval
    # records (mask metrics themselves come from metrics_set).
    'EvalConfig': {
        **{name: HONOURED for name in (
            'batch_size', 'num_visualizations', 'metrics_set',
            'use_moving_averages', 'eval_instance_masks',
            'min_score_threshold', 'max_num_boxes_to_visualize',
            'include_metrics_per_category', 'all_metrics_per_category',
            'super_categories',
            'include_overlap_analysis')},
        **{name: 'no effect' for name in (
            'num_examples', 'eval_interval_secs', 'max_evals', 'save_graph',
            'visualization_export_dir', 'eval_master', 'export_path',
            'ignore_groundtruth', 'skip_scores', 'skip_labels',
            'visualize_groundtruth_boxes',
            'groundtruth_box_visualization_color',
            'keep_image_id_for_visualization_export',
            'retain_original_images',
            'retain_original_image_additional_channels',
            'image_classes_field_map_empty_to_ones')},
        **{name: 'only default' for name in (
            'recall_lower_bound', 'recall_upper_bound',
            'skip_predictions_for_unlabeled_class', 'force_no_resize',
            'use_dummy_loss_in_eval')},
        **{name: 'refused' for name in REFUSED_BY['EvalConfig']}},
    # data.image_resizer.build reads every field of the three resizers it
    # builds (per_channel_pad_value: the padding of pad_to_max_dimension).
    'ImageResizer': {
        **{name: HONOURED for name in (
            'keep_aspect_ratio_resizer', 'fixed_shape_resizer',
            'identity_resizer')},
        **{name: 'refused' for name in REFUSED_BY['ImageResizer']}},
    'KeepAspectRatioResizer': {name: HONOURED for name in (
        'min_dimension', 'max_dimension', 'resize_method',
        'pad_to_max_dimension', 'convert_to_grayscale',
        'per_channel_pad_value')},
    'FixedShapeResizer': {name: HONOURED for name in (
        'height', 'width', 'resize_method', 'convert_to_grayscale')},
    'IdentityResizer': {},
    'ConditionalShapeResizer': {
        name: 'refused' for name in REFUSED_BY['ConditionalShapeResizer']},
    'PadToMultipleResizer': {
        name: 'refused' for name in REFUSED_BY['PadToMultipleResizer']},
    # builders.optimizer_builder / learning_schedules read every field.
    'Optimizer': {name: HONOURED for name in (
        'rms_prop_optimizer', 'momentum_optimizer', 'adam_optimizer',
        'use_moving_average', 'moving_average_decay')},
    'RMSPropOptimizer': {name: HONOURED for name in (
        'learning_rate', 'momentum_optimizer_value', 'decay', 'epsilon')},
    'MomentumOptimizer': {'learning_rate': HONOURED,
                          'momentum_optimizer_value': HONOURED},
    'AdamOptimizer': {'learning_rate': HONOURED, 'epsilon': HONOURED},
    'LearningRate': {name: HONOURED for name in (
        'constant_learning_rate', 'exponential_decay_learning_rate',
        'manual_step_learning_rate', 'cosine_decay_learning_rate')},
    'ConstantLearningRate': {'learning_rate': HONOURED},
    'ExponentialDecayLearningRate': {name: HONOURED for name in (
        'initial_learning_rate', 'decay_steps', 'decay_factor', 'staircase',
        'burnin_learning_rate', 'burnin_steps', 'min_learning_rate')},
    'ManualStepLearningRate': {'initial_learning_rate': HONOURED,
                               'schedule': HONOURED, 'warmup': HONOURED},
    'LearningRateSchedule': {'step': HONOURED, 'learning_rate': HONOURED},
    'CosineDecayLearningRate': {name: HONOURED for name in (
        'learning_rate_base', 'total_steps', 'warmup_learning_rate',
        'warmup_steps', 'hold_base_rate_steps')},
    # builders.dataset_builder / data.decoder. max_number_of_boxes: eval
    # readers pad to it (unset: train_config's); the train reader's is
    # logged as having no effect by build_from_pipeline (training pads to
    # train_config.max_number_of_boxes, as in the OD API).
    'InputReader': {
        **{name: HONOURED for name in (
            'label_map_path', 'shuffle', 'shuffle_buffer_size',
            'filenames_shuffle_buffer_size', 'num_epochs',
            'sample_1_of_n_examples', 'num_readers', 'num_prefetch_batches',
            'read_block_length', 'load_instance_masks', 'mask_type',
            'use_display_name', 'tf_record_input_reader',
            'max_number_of_boxes')},
        **{name: 'no effect' for name in (
            'name', 'num_parallel_batches', 'num_parallel_map_calls',
            'prefetch_size', 'queue_capacity', 'min_after_dequeue',
            'include_source_id', 'drop_remainder')},
        **{name: 'only default' for name in (
            'num_additional_channels', 'num_keypoints',
            'keypoint_type_weight', 'use_keypoint_label_map',
            'load_keypoint_depth_features', 'load_multiclass_scores',
            'load_context_features', 'load_context_image_ids',
            'load_dense_pose', 'load_track_id', 'expand_labels_hierarchy',
            'input_type', 'frame_index', 'sample_from_datasets_weights')},
        **{name: 'refused' for name in REFUSED_BY['InputReader']}},
    'TFRecordInputReader': {'input_path': HONOURED},
    'ExternalInputReader': {},
    # builders.deepmac_builder reads every field into DeepMACParams; the
    # settings of weak losses not trained here have no effect.
    'DeepMACMaskEstimation': {
        **{name: HONOURED for name in (
            'classification_loss', 'task_loss_weight', 'dim',
            'pixel_embedding_dim', 'allowed_masked_classes_ids', 'mask_size',
            'use_xy', 'network_type', 'use_instance_embedding',
            'num_init_channels', 'predict_full_resolution_masks',
            'postprocess_crop_size', 'max_roi_jitter_ratio', 'jitter_mode',
            'box_consistency_loss_weight', 'box_consistency_loss_normalize',
            'box_consistency_tightness', 'use_only_last_stage',
            'ignore_per_class_box_overlap', 'detector_free',
            'embedding_head_kernel', 'embedding_head_num_filters',
            'mask_detection_score_threshold', 'mask_head_slots',
            'teacher_student', 'weight_transfer')},
        **{name: 'no effect' for name in (
            'feature_consistency_threshold', 'feature_consistency_dilation',
            'feature_consistency_warmup_steps',
            'feature_consistency_warmup_start', 'feature_consistency_type',
            'feature_consistency_comparison',
            *_AUGMENTED_SELF_SUPERVISION_FIELDS)},
        **{name: 'refused' for name in REFUSED_BY['DeepMACMaskEstimation']}},
    # builders.mask_rcnn_builder (+ maskx_builder, teacher_student_builder).
    'DeepMarcMaskHead': {name: HONOURED for name in (
        'network_type', 'num_init_channels', 'crop_size', 'mask_size',
        'class_agnostic', 'box_source', 'num_sampled_masks',
        'allowed_masked_classes_ids', 'weight_transfer', 'mlp_mask_branch',
        'training_mode', 'teacher_student')},
    'MlpMaskBranch': {'num_fc_layers': HONOURED, 'fc_dim': HONOURED},
    # builders.maskx_builder (Deep-MAC and Deep-MARC).
    'WeightTransfer': {name: HONOURED for name in (
        'input', 'num_layers', 'activation', 'hidden_dim', 'stop_gradient')},
    # builders.teacher_student_builder (Deep-MAC and Deep-MARC).
    'TeacherStudent': {name: HONOURED for name in (
        'teacher_network_type', 'teacher_num_init_channels',
        'student_network_type', 'pseudo_mask_rule', 'teacher_loss_weight',
        'student_loss_weight')},
    # The roots: every part is built (train / eval drivers, model_builder).
    'TrainEvalPipelineConfig': {name: HONOURED for name in (
        'model', 'train_config', 'train_input_reader', 'eval_config',
        'eval_input_reader')},
    'DetectionModel': {'faster_rcnn': HONOURED, 'center_net': HONOURED},
    # hyperparams_builder.from_proto (+ the L2 weight decay of
    # mask_rcnn_builder._l2_weight_decay); checked in hyperparams_kwargs.
    'Hyperparams': {
        **{name: HONOURED for name in (
            'op', 'regularizer', 'initializer', 'activation', 'batch_norm',
            'sync_batch_norm', 'force_use_bias')},
        'regularize_depthwise': 'no effect', **_refused('Hyperparams')},
    'Regularizer': {'l2_regularizer': HONOURED, **_refused('Regularizer')},
    'L1Regularizer': _refused('L1Regularizer'),
    'L2Regularizer': {'weight': HONOURED},
    'Initializer': {name: HONOURED for name in (
        'truncated_normal_initializer', 'variance_scaling_initializer',
        'random_normal_initializer', 'keras_initializer_by_name')},
    'TruncatedNormalInitializer': {'mean': HONOURED, 'stddev': HONOURED},
    'RandomNormalInitializer': {'mean': HONOURED, 'stddev': HONOURED},
    'VarianceScalingInitializer': {'factor': HONOURED, 'uniform': HONOURED,
                                   'mode': HONOURED},
    'BatchNorm': {name: HONOURED for name in (
        'decay', 'center', 'scale', 'epsilon', 'train')},
    'SyncBatchNorm': {name: HONOURED for name in (
        'decay', 'center', 'scale', 'epsilon', 'train')},
    'GroupNorm': {},
    # mask_rcnn_builder (levels, fpn_num_filters).
    'FeaturePyramidNetworks': {name: HONOURED for name in (
        'min_level', 'max_level', 'additional_layer_depth')},
    # mask_rcnn_builder._anchor_kwargs (grid: single-level backbones,
    # multiscale: FPN; the other kind is refused there).
    'AnchorGenerator': {'grid_anchor_generator': HONOURED,
                        'multiscale_anchor_generator': HONOURED},
    'GridAnchorGenerator': {name: HONOURED for name in (
        'height', 'width', 'height_stride', 'width_stride', 'height_offset',
        'width_offset', 'scales', 'aspect_ratios')},
    'MultiscaleAnchorGenerator': {
        **{name: HONOURED for name in (
            'min_level', 'max_level', 'anchor_scale', 'aspect_ratios',
            'scales_per_octave')},
        'normalize_coordinates': 'no effect'},
    'BoxPredictor': {'mask_rcnn_box_predictor': HONOURED},
    # mask_rcnn_builder._post_processing_kwargs (score_converter: SOFTMAX,
    # the others are refused there).
    'PostProcessing': {'batch_non_max_suppression': HONOURED,
                       'score_converter': HONOURED,
                       'logit_scale': 'only default',
                       **_refused('PostProcessing')},
    'BatchNonMaxSuppression': {
        **{name: HONOURED for name in (
            'score_threshold', 'iou_threshold', 'max_total_detections',
            'max_detections_per_class')},
        **{name: 'no effect' for name in (
            'use_static_shapes',
            'use_partitioned_nms', 'use_hard_nms', 'use_cpu_nms')},
        **{name: 'only default' for name in (
            'use_class_agnostic_nms', 'max_classes_per_detection',
            'soft_nms_sigma', 'use_combined_nms',
            'change_coordinate_frame')}},
    # Each part takes its losses and refuses the others in one line: box
    # classifier weighted_softmax (check_options), CenterNet center
    # heatmap penalty_reduced_logistic_focal_loss (center_net_builder),
    # Deep-MAC masks weighted_sigmoid / weighted_dice_classification_loss
    # (deepmac_builder; checked in model_builder).
    'ClassificationLoss': {
        **{name: HONOURED for name in (
            'weighted_sigmoid', 'weighted_softmax',
            'penalty_reduced_logistic_focal_loss',
            'weighted_dice_classification_loss')},
        **_refused('ClassificationLoss')},
    'WeightedSigmoidClassificationLoss': {'anchorwise_output': 'no effect'},
    'WeightedSoftmaxClassificationLoss': {'anchorwise_output': 'no effect',
                                          'logit_scale': 'only default'},
    'PenaltyReducedLogisticFocalLoss': {'alpha': HONOURED, 'beta': HONOURED},
    'WeightedDiceClassificationLoss': {'squared_normalization': HONOURED,
                                       'is_prediction_probability': HONOURED},
    **{name: _refused(name) for name in (
        'BootstrappedSigmoidClassificationLoss',
        'SigmoidFocalClassificationLoss',
        'WeightedSoftmaxClassificationAgainstLogitsLoss',
        'WeightedL2LocalizationLoss', 'WeightedSmoothL1LocalizationLoss')},
    'LocalizationLoss': {'l1_localization_loss': HONOURED,
                         **_refused('LocalizationLoss')},
    'L1LocalizationLoss': {},
    'WeightedIOULocalizationLoss': {},
    'WeightedGIOULocalizationLoss': {},
    # data.augmentation.builder / catalogue: each implemented step's reader
    # reads every field of its message (checked, with the OD API's
    # defaults); the other steps are refused in one line.
    'PreprocessingStep': {
        **{name: HONOURED for name in augmentation_builder.STEPS},
        **_refused('PreprocessingStep')},
    **{message: {name: HONOURED for name in fields} for message, fields in (
        ('NormalizeImage', ('original_minval', 'original_maxval',
                            'target_minval', 'target_maxval')),
        ('RandomPixelValueScale', ('minval', 'maxval')),
        ('RandomImageScale', ('min_scale_ratio', 'max_scale_ratio')),
        ('RandomRGBtoGray', ('probability',)),
        ('RandomAdjustBrightness', ('max_delta',)),
        ('RandomAdjustContrast', ('min_delta', 'max_delta')),
        ('RandomAdjustHue', ('max_delta',)),
        ('RandomAdjustSaturation', ('min_delta', 'max_delta')),
        ('RandomDistortColor', ('color_ordering',)),
        ('RandomJitterBoxes', ('ratio', 'jitter_mode')),
        ('RandomCropImage', ('min_object_covered', 'min_aspect_ratio',
                             'max_aspect_ratio', 'min_area', 'max_area',
                             'overlap_thresh', 'clip_boxes', 'random_coef')),
        ('RandomPadImage', ('min_image_height', 'min_image_width',
                            'max_image_height', 'max_image_width',
                            'pad_color')),
        ('RandomCropPadImage', ('min_object_covered', 'min_aspect_ratio',
                                'max_aspect_ratio', 'min_area', 'max_area',
                                'overlap_thresh', 'clip_boxes', 'random_coef',
                                'min_padded_size_ratio',
                                'max_padded_size_ratio', 'pad_color')),
        ('RandomCropToAspectRatio', ('aspect_ratio', 'overlap_thresh',
                                     'clip_boxes')),
        ('RandomBlackPatches', ('max_black_patches', 'probability',
                                'size_to_image_ratio')),
        ('RandomResizeMethod', ('target_height', 'target_width')),
        ('ResizeImage', ('new_height', 'new_width', 'method')),
        ('SubtractChannelMean', ('means',)),
        ('RGBtoGray', ()),
        ('RandomAbsolutePadImage', ('max_height_padding', 'max_width_padding',
                                    'pad_color')),
        ('RandomSelfConcatImage', ('concat_vertical_probability',
                                   'concat_horizontal_probability')),
        ('DropLabelProbabilistically', ('label', 'drop_probability')),
        ('RemapLabels', ('original_labels', 'new_label')),
        ('RandomJpegQuality', ('random_coef', 'min_jpeg_quality',
                               'max_jpeg_quality')),
        ('RandomDownscaleToTargetPixels', ('random_coef', 'min_target_pixels',
                                           'max_target_pixels')),
        ('RandomPatchGaussian', ('random_coef', 'min_patch_size',
                                 'max_patch_size', 'min_gaussian_stddev',
                                 'max_gaussian_stddev')),
        ('RandomSquareCropByScale', ('max_border', 'scale_min', 'scale_max',
                                     'num_scales')),
        ('RandomScaleCropAndPadToSquare', ('output_size', 'scale_min',
                                           'scale_max')),
        ('AdjustGamma', ('gamma', 'gain')))},
    **{message: {'probability': HONOURED, **_refused(message)}
       for message in ('RandomHorizontalFlip', 'RandomVerticalFlip',
                       'RandomRotation90')},
}


def check_fields(message, path):
  """For each set field of ``message`` (at config path ``path``): one log
  line if it has no effect here (``NO_EFFECT``); a ConfigError if it must
  keep a value it does not have (``ONLY_DEFAULT``)."""
  handling = FIELD_HANDLING[message.DESCRIPTOR.name]
  for field, value in message.ListFields():
    if handling.get(field.name) not in ('no effect', 'only default'):
      continue
    if field.name in NO_EFFECT:
      hyperparams_builder.log_no_effect(f'{path}.{field.name}',
                                        NO_EFFECT[field.name])
    if field.name in ONLY_DEFAULT and value != ONLY_DEFAULT[field.name][0]:
      allowed, why = ONLY_DEFAULT[field.name]
      if field.is_repeated:
        raise ConfigError(f'{path}.{field.name}: must be left unset here '
                          f'({why}), got {[float(f"{v:.6g}") for v in value]}.')
      if field.enum_type is not None:
        allowed, value = (field.enum_type.values_by_number[v].name
                          for v in (allowed, value))
      raise ConfigError(f'{path}.{field.name}: only {allowed!r} is supported '
                        f'here ({why}), got {value!r}.')


def check_options(config):
  """Logs the fields accepted without effect; raises ConfigError for values
  that cannot be honoured (see ``NO_EFFECT`` / ``ONLY_DEFAULT``)."""
  check_fields(config, F)
  check_fields(config.feature_extractor, f'{F}.feature_extractor')
  predictor = config.second_stage_box_predictor.mask_rcnn_box_predictor
  check_fields(predictor, _P)
  if config.HasField('deepmarc_mask_head'):
    check_fields(config.deepmarc_mask_head, f'{F}.deepmarc_mask_head')
  if config.HasField('hard_example_miner'):
    raise ConfigError(f'{F}.hard_example_miner: supported by the OD API, not '
                      "by deepmac_tf (the RPN and ROI samplers are Model "
                      "Garden's balanced samplers); remove it.")
  loss = config.second_stage_classification_loss
  if loss.WhichOneof('classification_loss') not in (None, 'weighted_softmax'):
    raise ConfigError(f'{F}.second_stage_classification_loss: the box head '
                      'is trained with softmax cross-entropy; use '
                      'weighted_softmax (or leave it unset).')
  if loss.HasField('weighted_softmax'):
    check_fields(loss.weighted_softmax,
                 f'{F}.second_stage_classification_loss.weighted_softmax')


def _model_garden_defaults(norm_momentum, norm_epsilon, sync):
  return LayerHyperparams(batch_norm_momentum=norm_momentum,
                          batch_norm_epsilon=norm_epsilon,
                          sync_batch_norm=sync)


def hyperparams_kwargs(config, use_sync_batch_norm, norm_momentum,
                       norm_epsilon):
  """``MaskRCNNParams`` ``*_hyperparams`` from the config's Hyperparams."""
  fe = config.feature_extractor
  single = deepmarc_backbones.is_single_level(fe.type)
  trainable = fe.batch_norm_trainable if fe.HasField(
      'batch_norm_trainable') else True

  def parse(message, field, op=hyperparams_pb2.Hyperparams.CONV,
            bn_trainable=True):
    check_fields(message, f'{F}.{field}')
    return hyperparams_builder.from_proto(
        message, f'{F}.{field}', op=op, batch_norm_trainable=bn_trainable,
        use_sync_batch_norm=use_sync_batch_norm)

  kwargs = {}
  conv = (parse(fe.conv_hyperparams, 'feature_extractor.conv_hyperparams',
                bn_trainable=trainable)
          if fe.HasField('conv_hyperparams') else None)
  if conv is not None and not single:
    kwargs['decoder_hyperparams'] = conv
  if conv is not None and fe.override_base_feature_extractor_hyperparams:
    kwargs['backbone_hyperparams'] = conv
  elif conv is not None and single:
    hyperparams_builder.log_no_effect(
        f'{F}.feature_extractor.conv_hyperparams',
        'this backbone has no FPN and override_base_feature_extractor_'
        'hyperparams is false (as in the OD API)')
  elif fe.HasField('batch_norm_trainable'):
    base = (faster_rcnn_keras.RESNET_DEFAULTS if 'resnet' in fe.type and single
            else faster_rcnn_keras.INCEPTION_RESNET_DEFAULTS if single
            else _model_garden_defaults(norm_momentum, norm_epsilon,
                                        use_sync_batch_norm))
    kwargs['backbone_hyperparams'] = dataclasses.replace(
        base, batch_norm_trainable=trainable)
  if config.HasField('first_stage_box_predictor_conv_hyperparams'):
    kwargs['rpn_hyperparams'] = _with_batch_norm(
        parse(config.first_stage_box_predictor_conv_hyperparams,
              'first_stage_box_predictor_conv_hyperparams'),
        f'{F}.first_stage_box_predictor_conv_hyperparams',
        "Model Garden's RPN head", norm_momentum, norm_epsilon)
  predictor = config.second_stage_box_predictor.mask_rcnn_box_predictor
  if predictor.HasField('fc_hyperparams'):
    kwargs['box_head_hyperparams'] = parse(
        predictor.fc_hyperparams,
        'second_stage_box_predictor.mask_rcnn_box_predictor.fc_hyperparams',
        op=hyperparams_pb2.Hyperparams.FC)
  if predictor.HasField('conv_hyperparams'):
    kwargs['mask_head_hyperparams'] = _with_batch_norm(
        parse(predictor.conv_hyperparams,
              'second_stage_box_predictor.mask_rcnn_box_predictor.'
              'conv_hyperparams'),
        f'{_P}.conv_hyperparams', 'the mask-head catalogue',
        norm_momentum, norm_epsilon)
  # Model Garden's ResNet and FPN are built (functional) with batch norm
  # center and scale; the heads take both settings (not built yet).
  model_garden = [] if single else [
      ('decoder_hyperparams', 'feature_extractor.conv_hyperparams'),
      ('backbone_hyperparams', 'feature_extractor.conv_hyperparams')]
  for part, field in model_garden:
    hp = kwargs.get(part)
    if hp is not None and hp.batch_norm and not (hp.batch_norm_center and
                                                 hp.batch_norm_scale):
      raise ConfigError(f'{F}.{field}.batch_norm: center and scale must be '
                        "true here (Model Garden's layers learn both); got "
                        f'center {hp.batch_norm_center}, scale '
                        f'{hp.batch_norm_scale}.')
  mask = kwargs.get('mask_head_hyperparams')
  if mask is not None and mask.activation != 'relu':
    raise ConfigError(f'{_P}.conv_hyperparams.activation: the mask-head '
                      'catalogue uses ReLU.')
  return kwargs


def _with_batch_norm(hyperparams, field, layers, momentum, epsilon):
  """Parts whose layers always normalize: a message without a normalizer
  gets the model's batch norm, with a log line (the OD API has none)."""
  if hyperparams.batch_norm:
    return hyperparams
  hyperparams_builder.log_no_effect(
      f'{field} (no batch_norm)',
      f'{layers} always normalizes its convolutions with batch norm '
      f'(momentum {momentum}, epsilon {epsilon})')
  return dataclasses.replace(hyperparams, batch_norm=True,
                             batch_norm_momentum=momentum,
                             batch_norm_epsilon=epsilon,
                             batch_norm_center=True, batch_norm_scale=True)


def _mask_conv_depth(num_feature_channels, num_classes):
  """The OD API's rule for ``mask_prediction_conv_depth: 0``: a power of 2
  between the feature width (weight 2) and the class count (weight 3), in
  log2."""
  log_depth = (2 * math.log2(num_feature_channels) +
               3 * math.log2(num_classes)) / 5
  return int(2 ** round(log_depth))


def box_predictor_kwargs(config, single_level):
  """Box-head options of ``mask_rcnn_box_predictor`` (dropout, shared box)."""
  predictor = config.second_stage_box_predictor.mask_rcnn_box_predictor
  kwargs = {}
  if predictor.use_dropout:
    if not single_level:
      raise ConfigError(f'{_P}.use_dropout: Model Garden\'s FPN box head has '
                        'no dropout; it is supported with single-level '
                        'backbones.')
    if not 0 < predictor.dropout_keep_probability <= 1:
      raise ConfigError(f'{_P}.dropout_keep_probability: must be in (0, 1], '
                        f'got {predictor.dropout_keep_probability}.')
    kwargs['box_head_dropout_keep_probability'] = (
        predictor.dropout_keep_probability)
  if predictor.share_box_across_classes:
    if not single_level:
      raise ConfigError(f'{_P}.share_box_across_classes: supported with '
                        'single-level backbones only here.')
    kwargs['share_box_across_classes'] = True
  return kwargs


def mask_head_from_box_predictor(config):
  """DeepMarcMaskHead fields from ``mask_rcnn_box_predictor``'s mask
  options (when the config has no ``deepmarc_mask_head``): a
  ``DeepMarcMaskHead`` message, or None when it predicts no masks.

  mask_height = mask_width -> mask_size; crop_size = the largest divisor
  of mask_size in 7..16 (else mask_size); mask_prediction_conv_depth ->
  num_init_channels (0: the OD API's rule from the feature width and class
  count); mask_prediction_num_conv_layers -> the catalogue's FCN head of
  that depth; masks_are_class_agnostic -> class_agnostic;
  convolve_then_upsample_masks: the catalogue heads convolve at the crop
  size, then upsample (false: logged).
  """
  from deepmac_tf.protos import faster_rcnn_pb2  # pylint: disable=g-import-not-at-top
  predictor = config.second_stage_box_predictor.mask_rcnn_box_predictor
  if not predictor.predict_instance_masks:
    for name in ('mask_height', 'mask_width', 'mask_prediction_conv_depth',
                 'mask_prediction_num_conv_layers', 'masks_are_class_agnostic',
                 'convolve_then_upsample_masks'):
      if predictor.HasField(name):
        raise ConfigError(f'{_P}.{name}: set predict_instance_masks: true '
                          'for mask options.')
    return None
  if predictor.mask_height != predictor.mask_width:
    raise ConfigError(f'{_P}.mask_height / mask_width: masks are square '
                      f'here, got {predictor.mask_height} x '
                      f'{predictor.mask_width}.')
  size = predictor.mask_height
  crop = next((d for d in range(16, 6, -1) if size % d == 0), size)
  by_depth = {v: k for k, v in fcn_heads.FCN_HEAD_SPECS.items()}
  if predictor.mask_prediction_num_conv_layers not in by_depth:
    raise ConfigError(f'{_P}.mask_prediction_num_conv_layers: the catalogue '
                      f'has FCN heads of {sorted(by_depth)} convolutions, got '
                      f'{predictor.mask_prediction_num_conv_layers}.')
  if not predictor.convolve_then_upsample_masks:
    hyperparams_builder.log_no_effect(
        f'{_P}.convolve_then_upsample_masks: false',
        'the catalogue heads convolve at the crop size, then upsample')
  fe = config.feature_extractor
  channels = (fe.fpn.additional_layer_depth if fe.HasField('fpn') else
              1536 if 'inception' in fe.type else 2048)
  depth = predictor.mask_prediction_conv_depth or _mask_conv_depth(
      channels, config.num_classes)
  return faster_rcnn_pb2.DeepMarcMaskHead(
      network_type=by_depth[predictor.mask_prediction_num_conv_layers],
      num_init_channels=depth, crop_size=crop, mask_size=size,
      class_agnostic=predictor.masks_are_class_agnostic)
