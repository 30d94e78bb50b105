"""One reader per corpus: its own layout -> clip records for training.clip_folder's writer (no torch here)."""

from __future__ import annotations

from training.clip_folder import Corpus
from training.readers.collection import COLLECTION
from training.readers.cremad import CREMAD
from training.readers.emodb import EMODB
from training.readers.feedback import FEEDBACK
from training.readers.fer2013 import FER2013
from training.readers.goemotions import GOEMOTIONS
from training.readers.ravdess import RAVDESS

CORPORA: dict[str, Corpus] = {"cremad": CREMAD, "emodb": EMODB, "ravdess": RAVDESS, "goemotions": GOEMOTIONS,
                              "fer2013": FER2013, "feedback": FEEDBACK, "collection": COLLECTION}
