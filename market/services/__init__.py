"""State changes of datasets for buyers. One function per use case; each owns its transaction."""

from market.services.grants import GrantError, dataset_purchase, grant_give, grant_revoke

__all__ = ["GrantError", "dataset_purchase", "grant_give", "grant_revoke"]
