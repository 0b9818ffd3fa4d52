"""Meta-architectures: CenterNet, Deep-MAC, Mask R-CNN variants."""
