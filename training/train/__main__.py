"""`torchrun -m lane_seg.training.train` (and `python -m lane_seg.training.train`)."""

import sys

from lane_seg.training.train.trainer import main

sys.exit(main())
