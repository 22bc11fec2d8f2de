"""Shared helper modules of the test folders (e.g. `polling`) live here."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
