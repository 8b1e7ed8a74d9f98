import os
import sys
from pathlib import Path

# Qt must run headless in tests; set before any Qt import.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Never let tests touch the user's real workspace.
os.environ.setdefault("STUDIO_WORKSPACE", str(Path(__file__).parent / ".." / ".pytest_cache" / "no-default-workspace"))

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
