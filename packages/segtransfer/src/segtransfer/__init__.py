"""Transfer evaluation: ADE20K-protocol FCN segmentation with mIoU, and COCO detection."""
