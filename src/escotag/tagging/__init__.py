"""From a posting to its ranked occupations: model names (``models``), one encoder's scoring (``pipeline``), rules
users edit (``rules``), the one ranking step (``ranking``) and the Tagger that routes and fuses (``tagger``)."""
