import sys

from wakeword.cli.app import main

sys.exit(main())
