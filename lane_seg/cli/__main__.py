"""`python -m lane_seg.cli` = `lane-seg`."""

import sys

from lane_seg.cli.main import main

sys.exit(main())
