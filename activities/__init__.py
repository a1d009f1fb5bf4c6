"""Temporal activities: everything that talks to the outside world (providers, SQL)."""
