"""Payments: the gateway interface (manual, Stripe), saved cards, charging invoices, webhooks."""
