"""The LTFv6 network, with parameter names equal to LEAD's checkpoint keys."""

from lead_ros.model.config import LTFv6Config
from lead_ros.model.ltfv6 import LTFv6, PlanningOutput

__all__ = ["LTFv6", "LTFv6Config", "PlanningOutput"]
