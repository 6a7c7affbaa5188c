import sys

from keras_longformer.bench.cli import main

sys.exit(main())
