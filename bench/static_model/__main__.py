"""``python -m static_model`` (from bench/): the same as ``python bench/kernels_static.py``."""

from .cli import main

raise SystemExit(main())
