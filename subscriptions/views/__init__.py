"""Subscription pages: `lists` (the Subscriptions page: every customer's subscriptions, and its
CSV), `orders` (Buy, Add licences, Order now), `terms` (Plans and terms,
change plan, renewal settings, cancel, suspend; the customer's read-only view) and `prices`
(the reseller's Price book and its customers' special prices)."""
