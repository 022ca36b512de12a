"""The JSON API's controllers: thin handlers that call services and return schemas."""

from __future__ import annotations

from server.api import accounts, batches, catalogue, interviews, reviews, submissions, system

ROUTES = [
    *system.ROUTES,
    *accounts.ROUTES,
    *catalogue.ROUTES,
    *submissions.ROUTES,
    *batches.ROUTES,
    *interviews.ROUTES,
    *reviews.ROUTES,
]
