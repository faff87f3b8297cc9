"""Dynamic batching: one queue for every caller, admission by count and by time, and the cost of a batch
learned per engine. It hands padded work to the engines layer and never calls back into the core."""
