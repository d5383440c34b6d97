# syntax=docker/dockerfile:1
# secrets_broker: API, worker and relay image (AppRole launcher included).
# Built from the repository root: docker build -f deploy/docker/secrets_broker.Dockerfile .
# No image is built on the project's build machines (no Docker daemon): CI lints this file with hadolint.

# ---- build: install the packages into a venv (no secret is ever passed to a build step) ----
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY libs/mspkit libs/mspkit
COPY services/secrets_broker services/secrets_broker
RUN pip install ./libs/mspkit ./services/secrets_broker
# mspctl's launcher and Vault bootstrap only: the dev stack's modules (the dev issuer, the mail sink,
# the embedded servers) are removed, so no dev-only part is in this image (tests/devstack/test_compose_parity.py).
COPY tools/devstack tools/devstack
RUN pip install --no-deps ./tools/devstack \
 && pip install typer==0.29.2 rich==15.0.0 python-dotenv==1.2.4 \
 && find /opt/venv/lib/python3.11/site-packages/mspctl -name '*.py' \
      ! -name __init__.py ! -name __main__.py ! -name cli.py ! -name bao.py ! -name parts.py \
      ! -name launcher.py ! -name layout.py ! -name envfile.py ! -name files.py -delete

# ---- runtime: the venv only, run as an unprivileged user ----
FROM python:3.11.14-slim-bookworm
RUN groupadd --system --gid 10001 msp \
 && useradd --system --uid 10001 --gid msp --home-dir /home/msp --create-home --shell /usr/sbin/nologin msp \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/msp/launcher
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MSP_ENV=production \
    MSP_DEVSTACK_DIR=/var/lib/msp/launcher
WORKDIR /home/msp
USER 10001:10001
EXPOSE 8002
# The same readiness probe mspctl waits on; workers, relay and beat get their own in docker-compose.yml.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8002/readyz', timeout=4)"]
# The API's start command, as mspctl starts it (docker-compose.yml also runs the worker, relay and beat).
CMD ["python", "-m", "mspctl", "run-with-secret-id", "msp-broker-api", "--", "python", "-m", "uvicorn", "secrets_broker.main:app", "--host", "0.0.0.0", "--port", "8002", "--no-access-log"]
