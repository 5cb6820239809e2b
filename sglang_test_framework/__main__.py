"""``python -m sglang_test_framework`` → the CLI."""

from .cli import main

raise SystemExit(main())
