"""The auditor console at ``/console``: read-only pages for people (sign-in with an API key,
overview, decisions, a decision with its proof checked in the browser, integrity, compliance).
Every asset ships in this package; no page loads anything from elsewhere."""
