"""`python -m keras_longformer.cli`: the `keras-longformer` command."""

import sys

from keras_longformer.cli.main import main

sys.exit(main())
