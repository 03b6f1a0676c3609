"""`python -m odeviz …`: the same as the `odeviz` command."""
import sys

from .cli import main

sys.exit(main())
