"""Background workers: the flusher, the deadline sweeper and the rebuild from the database."""
