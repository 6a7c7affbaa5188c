"""The `keras-longformer` command line: `main` and `build_parser` (main.py),
one module per larger command (check.py, convert.py) and what they share
(support.py: errors, output checks, quiet native logs)."""

from keras_longformer.cli.main import build_parser
from keras_longformer.cli.main import main

__all__ = ["build_parser", "main"]
