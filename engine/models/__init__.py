"""Importing this package registers every model family with engine.registry."""
from . import wavenet  # noqa: F401
from . import hierarchical  # noqa: F401
from . import samplernn  # noqa: F401
from . import bytenet  # noqa: F401
from . import rnn  # noqa: F401
from . import seq2seq  # noqa: F401
from . import pipeline  # noqa: F401  (composes the others: after them)
