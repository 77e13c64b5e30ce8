"""`python -m responder`."""

from responder.cli import main

raise SystemExit(main())
