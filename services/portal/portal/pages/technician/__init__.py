"""The task pages: the queue, a task with its work forms (the admin's Assign form, Retry provisioning), and Reveal."""

from __future__ import annotations

from fastapi import APIRouter

from portal.pages.technician import actions, assign, queue, retry, reveal, task_page

router = APIRouter()
router.include_router(queue.router)
router.include_router(task_page.router)
router.include_router(actions.router)
router.include_router(assign.router)
router.include_router(retry.router)
router.include_router(reveal.router)
