"""Layer-wise transfer: linear segmentation probes on each layer's features of a frozen encoder."""
