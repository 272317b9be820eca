"""escotag: tag job postings with ESCO occupations, in many languages, on a CPU."""

from .errors import ConfigError, DataError, EscotagError
from .esco import load_taxonomy
from .esco.taxonomy import Taxonomy
from .tagging.ranking import Prediction, Tagged, Thresholds
from .tagging.tagger import Tagger
from .text.postings import Posting

__version__ = "0.1.0"
__all__ = [
    "ConfigError",
    "DataError",
    "EscotagError",
    "Posting",
    "Prediction",
    "Tagged",
    "Tagger",
    "Taxonomy",
    "Thresholds",
    "__version__",
    "load_taxonomy",
]
