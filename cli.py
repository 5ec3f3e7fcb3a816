"""`python cli.py ...` is the same as the `neonas` command."""

import sys

from neonas.cli import main

if __name__ == "__main__":
    sys.exit(main())
