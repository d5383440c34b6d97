"""The technician's pages: the task queue, a task with its work forms, and Reveal."""

from __future__ import annotations

from fastapi import APIRouter

from portal.pages.technician import actions, queue, reveal, task_page

router = APIRouter()
router.include_router(queue.router)
router.include_router(task_page.router)
router.include_router(actions.router)
router.include_router(reveal.router)
