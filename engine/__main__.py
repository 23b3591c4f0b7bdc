"""`python -m engine`: the generation command line (engine/cli.py)."""
import sys

from .cli import main

sys.exit(main())
