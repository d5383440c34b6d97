"""The ticket pod: a page the PSA's ticket screen frames, with its own cookie, sign-in pop-up and Reveal.

Kept free of imports: `portal.deps` reads pod sessions from `portal.pod.store`, and the routes
(`portal.pod.routes`, mounted by `portal.main`) build on `portal.deps`.
"""
