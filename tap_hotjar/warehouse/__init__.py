"""The warehouse side of the project: what the tap loaded, read and changed in place.

`connection` opens a PostgreSQL or DuckDB warehouse named by a URL; reconciliation and
data-subject erasure build on it.
"""
