from .aggregate import METHODS, aggregate
from .errors import ConsensusError, DeviceUnavailableError
from .result import AggregationResult

__all__ = ["METHODS", "AggregationResult", "ConsensusError", "DeviceUnavailableError", "aggregate"]
