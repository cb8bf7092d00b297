"""Protobuf <-> domain conversions, by concern: records, queries, filters."""
