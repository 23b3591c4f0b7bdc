"""`python -m trainers ...` (see trainers.cli)."""
import sys

from .cli import main

sys.exit(main())
