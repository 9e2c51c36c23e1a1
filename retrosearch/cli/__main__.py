"""`python -m retrosearch.cli` (e.g. under `accelerate launch -m retrosearch.cli distill ...`)."""

from retrosearch.cli import main

raise SystemExit(main())
