"""The spec's import paths, kept working: ``sglang_test_framework.tests.node_test`` and
``sglang_test_framework.tests.routing_test`` re-export the scenarios (which live in
:mod:`sglang_test_framework.scenarios`) and run them with ``python -m``. Nothing else lives here."""
