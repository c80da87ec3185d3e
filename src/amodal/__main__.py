import sys

from amodal.cli import main

sys.exit(main())
