"""The consent ledger: append-only setting events on a hash chain (`chain`), what goes in (`inputs`),
recording and as-of state (`ledger`), verification (`verify`), and the snapshot that bulk engines join
(`snapshot`: user_id → effective explicit choices at time T). Import from the modules."""
