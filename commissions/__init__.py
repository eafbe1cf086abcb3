"""The reseller's earnings: its margin on what its customers pay (commissions.margins) and its
commission statements."""
