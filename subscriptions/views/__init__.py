"""Subscription pages: `orders` (Buy, Add licences, Order now) and `terms` (Plans and terms,
change plan, renewal settings, cancel, suspend; the customer's read-only view)."""
