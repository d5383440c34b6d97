"""intake's outbox relay: `python -m intake.relay`."""

from intake.celery_app import app as celery_app
from intake.db import KIT, get_engine
from intake.events import ROUTES
from intake.settings import get_settings
from mspkit.relay import Relay, run_relay_forever


def main() -> None:
    """Run the relay until SIGTERM."""
    settings = get_settings()
    from mspkit.logging import configure_logging

    configure_logging("intake-relay", settings.log_level, secrets=settings.secret_values())
    run_relay_forever(
        Relay(engine=get_engine(), tables=KIT, celery_app=celery_app, routes=ROUTES, redis_url=settings.redis_url)
    )


if __name__ == "__main__":
    main()
