"""The harvester: the departments' internal catalog → the portal, in three open classes.

sources (CKAN, spreadsheet) → entry → classify → fetch/convert (convert) → PII scan (pii) →
publish (run.Harvester). Rules are plain functions over a SQLAlchemy session; no Flask here.
"""
