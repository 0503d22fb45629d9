"""Usage metering: one record per call, spooled durably, written to the database in batches."""
