"""Strategies: routing policies (:mod:`.routing`)."""
