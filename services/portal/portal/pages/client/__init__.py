"""The client pages (client_user and client_admin): requests, request forms, approvals and access."""

from __future__ import annotations

from fastapi import APIRouter

from portal.pages.client import access_pages, approvals_pages, new_request, requests_pages

router = APIRouter(tags=["client pages"])
# The form routes first: `/requests/new/{type}` must not be read as `/requests/{id}`.
router.include_router(new_request.router)
router.include_router(requests_pages.router)
router.include_router(approvals_pages.router)
router.include_router(access_pages.router)
