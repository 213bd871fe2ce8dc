import sys

from services.master.service import main

sys.exit(main())
