"""The gateway tests share helpers in gateway_helpers.py.

With pytest's importlib import mode a test module cannot import a sibling, so
this folder is put on sys.path here, before the test modules are collected.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
