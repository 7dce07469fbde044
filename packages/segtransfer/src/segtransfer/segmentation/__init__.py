"""Semantic segmentation transfer with the study's ADE20K protocol: the FCN head and `Segmenter`, loss, mIoU
(mmseg semantics), optimizer, protocol numbers, photometric jitter, the input pipeline, fine-tuning through the
engine, `SegmentationSpec` and the study's grid/seed selection."""
