"""The licensing business: invoices from pricing + the release ledger + metering, and the contributor
fund (record-days from the lineage) paid out in payout runs. Between `sharing` and `reporting`."""
