# syntax=docker/dockerfile:1
# intake: API, worker, relay and beat image.
# Built from the repository root: docker build -f deploy/docker/intake.Dockerfile .
# No image is built on the project's build machines (no Docker daemon): CI lints this file with hadolint.

# ---- build: install the packages into a venv (no secret is ever passed to a build step) ----
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY libs/mspkit libs/mspkit
COPY services/intake services/intake
RUN pip install ./libs/mspkit ./services/intake

# ---- runtime: the venv only, run as an unprivileged user ----
FROM python:3.11.14-slim-bookworm
RUN groupadd --system --gid 10001 msp \
 && useradd --system --uid 10001 --gid msp --home-dir /home/msp --create-home --shell /usr/sbin/nologin msp
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MSP_ENV=production
WORKDIR /home/msp
USER 10001:10001
EXPOSE 8001
# The same readiness probe mspctl waits on; workers, relay and beat get their own in docker-compose.yml.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8001/readyz', timeout=4)"]
# The API's start command, as mspctl starts it (docker-compose.yml also runs the worker, relay and beat).
CMD ["python", "-m", "uvicorn", "intake.main:app", "--host", "0.0.0.0", "--port", "8001", "--no-access-log"]
