import sys

from alert_config_sync.sync import main

sys.exit(main())
