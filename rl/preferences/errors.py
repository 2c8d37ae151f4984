"""The errors the preference package raises.

Each message is one line that names what was wrong and what to do about it. They subclass ``ValueError`` so
that code catching the builtin keeps working.
"""

from __future__ import annotations


class SegmentError(ValueError):
    """Raised for segments that cannot be cut: a length longer than every trajectory, a bad count, bad arrays."""


class UnknownRaterError(ValueError):
    """Raised by :func:`rl.preferences.make_rater` for a rater name that is not registered; lists close names."""


class LabelFileError(ValueError):
    """Raised for a label file a person filled in that cannot be used: unknown segment ids, a bad label, a bad row."""


class ComparisonQueueError(ValueError):
    """Raised for a comparison that names a segment the queue does not hold, or a queue file that is not one."""


class RewardModelError(ValueError):
    """Raised for inputs the reward model cannot take: unsupported spaces, no comparisons, mismatched shapes."""
