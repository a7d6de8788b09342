"""A vehicle's cameras and the cameras LTFv6 was trained with: calibration (``rig``), the nuPlan
camera model (``nuplan``) and the reprojection from one to the other (``reprojection``)."""
