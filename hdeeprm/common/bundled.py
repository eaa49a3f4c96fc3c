"""Where the data shipped inside the package lives (platforms, type libraries, experiments, traces)."""

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
