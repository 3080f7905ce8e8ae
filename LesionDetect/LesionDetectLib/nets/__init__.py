"""Network pieces shared by detectors: SSD heads and default boxes, backbones, the robust loss."""
