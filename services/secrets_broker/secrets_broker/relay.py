"""Outbox relay for secrets_broker (skeleton: sleeps until the kit's relay lands)."""

import time

if __name__ == "__main__":
    while True:
        time.sleep(3600)
