"""``make shell``: ``nameko shell`` on config.yml, for operators.

With the project's typed errors imported first, so that a failed call
raises ``NotFound``, ``ValidationError`` (with ``.details``) and the others
as themselves, not as nameko's generic ``RemoteError``.
"""

import sys

from nameko.cli.main import main as nameko_main

import servicekit.errors  # noqa: F401 - registers the typed errors with nameko
from servicekit.config import CONFIG_PATH

if __name__ == "__main__":
    sys.argv = ["nameko", "shell", "--config", str(CONFIG_PATH), *sys.argv[1:]]
    sys.exit(nameko_main())
