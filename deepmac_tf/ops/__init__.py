"""Pure functions (no Keras state, no protos): ROI crop, box jitter, mask-head
inputs and coordinate embeddings, mask targets, pasting box masks into images.

Modules:
  roi_crop: batched, XLA-friendly crop_and_resize.
  box_jitter: random jitter of groundtruth boxes (OD API semantics).
  mask_head_inputs: coordinate embeddings, crop / full-resolution pixel
    inputs, instance embeddings at box centres.
  mask_targets: groundtruth masks cropped at boxes, filled box masks.
  mask_pasting: box-relative masks pasted into image space.
  instances: [B, N, ...] <-> [B * N, ...] reshapes, logit resizing.
  multiclass_nms: per-class NMS with the OD API's per-class and total caps.
"""
