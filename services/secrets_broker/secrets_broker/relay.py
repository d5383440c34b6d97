"""secrets_broker's outbox relay: `python -m secrets_broker.relay`."""

from mspkit.logging import configure_logging
from mspkit.relay import Relay, run_relay_forever
from secrets_broker.celery_app import app as celery_app
from secrets_broker.db import KIT, get_engine
from secrets_broker.events import ROUTES
from secrets_broker.settings import get_settings


def main() -> None:
    """Run the relay until SIGTERM."""
    settings = get_settings()
    configure_logging("secrets_broker-relay", settings.log_level, secrets=settings.secret_values())
    run_relay_forever(
        Relay(engine=get_engine(), tables=KIT, celery_app=celery_app, routes=ROUTES, redis_url=settings.redis_url)
    )


if __name__ == "__main__":
    main()
