"""Queries: terms, expressions, filters, navigation maths, projection fitting."""
