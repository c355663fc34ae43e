"""ingest/index"""
