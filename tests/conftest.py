import sys
from pathlib import Path

# tests/ is importable as a package (tests.helpers) from any test module.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
