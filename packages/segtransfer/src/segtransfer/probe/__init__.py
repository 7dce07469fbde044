"""Layer-wise transfer: linear segmentation probes on each layer's features of a frozen encoder (`layer_probe`),
every option of a study (`spec`: `LayerProbeSpec`, what ``flopwise-probe-layers`` parses and a sweep's layer-probe
task holds) and a study of one encoder (`study`: `run_layer_probe`, and `read_layer_probe` for its result)."""
