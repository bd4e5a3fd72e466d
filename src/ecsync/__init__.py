"""ecsync: keeps channel listings in line with their Amazon Japan source offers."""

__version__ = "0.1.0"
