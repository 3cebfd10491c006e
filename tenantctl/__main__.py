"""`python -m tenantctl ...`: the same as the `tenantctl` command."""

import sys

from tenantctl.commands.main import main

sys.exit(main())
