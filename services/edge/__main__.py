import sys

from services.edge.service import main

sys.exit(main())
