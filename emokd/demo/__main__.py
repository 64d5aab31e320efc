import sys

from emokd.demo.job import main

sys.exit(main())
