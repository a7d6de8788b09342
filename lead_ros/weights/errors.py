"""The one exception type for weights that cannot be used."""


class WeightsError(ValueError):
    """A weights source that is missing, unreadable, or not an LTFv6 checkpoint."""
