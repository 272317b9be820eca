"""escotag: tag job postings with ESCO occupations, in many languages, on a CPU."""

from .errors import ConfigError, DataError, EscotagError
from .esco import load_taxonomy
from .postings import Posting
from .ranking import Prediction, Thresholds
from .tagger import Tagger
from .taxonomy import Taxonomy

__version__ = "0.1.0"
__all__ = [
    "ConfigError",
    "DataError",
    "EscotagError",
    "Posting",
    "Prediction",
    "Tagger",
    "Taxonomy",
    "Thresholds",
    "__version__",
    "load_taxonomy",
]
