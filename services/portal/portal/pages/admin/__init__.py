"""The admin pages (clients, staff, vendors, audit) and the shared disclosure ledger page."""

from __future__ import annotations

from fastapi import APIRouter

from portal.pages.admin import audit, clients, disclosures, staff, vendors

router = APIRouter(tags=["admin pages"])
router.include_router(clients.router)
router.include_router(staff.router)
router.include_router(vendors.router)
router.include_router(audit.router)
router.include_router(disclosures.router)
