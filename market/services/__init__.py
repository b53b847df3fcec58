"""State changes of datasets for buyers. One function per use case; each owns its transaction."""

from market.services.exports import (
    QUEUE_DOWN,
    ExportError,
    export_build,
    export_check,
    export_request,
    exports_expire,
)
from market.services.grants import GrantError, dataset_purchase, grant_give, grant_revoke
from market.services.imports import (
    ImportReport,
    ItemImportError,
    import_request,
    import_run,
    imports_fail_abandoned,
    items_import,
)

__all__ = [
    "QUEUE_DOWN",
    "ExportError",
    "GrantError",
    "ItemImportError",
    "ImportReport",
    "dataset_purchase",
    "export_build",
    "export_check",
    "export_request",
    "exports_expire",
    "grant_give",
    "grant_revoke",
    "import_request",
    "import_run",
    "imports_fail_abandoned",
    "items_import",
]
