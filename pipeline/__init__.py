"""newsbeam's command line and pipeline assembly."""

import logging


class _DropApitoolsNotice(logging.Filter):
    """Beam logs a warning about optional GCP client libraries at import time; it says nothing
    about a newsbeam run."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


logging.getLogger().addFilter(_DropApitoolsNotice())
