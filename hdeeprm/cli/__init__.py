"""The command line: ``hdeeprm`` (``main``, one module per command group) and ``hdeeprm-launch``.

The top layer: parses arguments, calls the layers below and reports user mistakes in one line
(``hdeeprm.common.errors.report_errors``).
"""

from hdeeprm.cli.main import main  # noqa: E402,F401  (the console script's entry point)
