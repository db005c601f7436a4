"""Conditional data: applications, routes (consent, research, tender), agreements, grants.

Filled by the licensing and tender issues; rules here take a SQLAlchemy session, never a request.
"""
