"""Privacy mechanisms: value protection of published statistics, the differential-privacy budget and its ledger."""
