# syntax=docker/dockerfile:1
# Dev only (docker-compose.dev.yml): the dev issuer, the mail sink and vendor_sim. Never deployed:
# each refuses to start unless MSP_ENV=dev, and docker-compose.yml runs none of them.
# Built from the repository root: docker build -f deploy/docker/devtools.Dockerfile .
# No image is built on the project's build machines (no Docker daemon): CI lints this file with hadolint.

FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY tools/devstack tools/devstack
COPY tools/vendor_sim tools/vendor_sim
RUN pip install ./tools/devstack ./tools/vendor_sim

FROM python:3.11.14-slim-bookworm
RUN groupadd --system --gid 10001 msp \
 && useradd --system --uid 10001 --gid msp --home-dir /home/msp --create-home --shell /usr/sbin/nologin msp \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/msp/devstack
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MSP_ENV=dev \
    MSP_DEVSTACK_DIR=/var/lib/msp/devstack
WORKDIR /home/msp
USER 10001:10001
EXPOSE 8004
HEALTHCHECK --interval=15s --timeout=5s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8004/healthz', timeout=4)"]
CMD ["python", "-m", "uvicorn", "vendor_sim.app:app", "--host", "0.0.0.0", "--port", "8004", "--no-access-log"]
