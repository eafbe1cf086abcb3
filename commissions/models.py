"""The reseller's commission statements (models added with their own migrations).

The margins themselves are not stored here: they are read from the charges' snapshots
(subscriptions.models.Charge) by commissions.margins.
"""
