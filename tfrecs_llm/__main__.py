"""``python -m tfrecs_llm`` runs the CLI."""

import sys

from tfrecs_llm.cli import main

sys.exit(main())
