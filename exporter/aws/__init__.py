"""The AWS half of the exporter: RDS facts, snapshots and CloudWatch, polled in the background."""
