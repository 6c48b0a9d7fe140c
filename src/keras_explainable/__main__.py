"""`python -m keras_explainable`: the command line (see `keras_explainable.cli`)."""

import sys

from keras_explainable.cli import main

sys.exit(main())
