import sys

from hdeeprm.cli.main import main

sys.exit(main())
