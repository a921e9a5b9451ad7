"""Everything that touches private data with a privacy guarantee: accounting, mechanisms, the ledger."""
