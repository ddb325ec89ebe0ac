"""``python -m aekit`` (also the entry point for ``torchrun -m aekit``)."""

from .cli import main

raise SystemExit(main())
