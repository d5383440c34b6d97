# syntax=docker/dockerfile:1
# openbao-bootstrap: `mspctl vault-bootstrap`, the same bootstrap as the dev stack.
# Built from the repository root: docker build -f deploy/docker/bootstrap.Dockerfile .
# No image is built on the project's build machines (no Docker daemon): CI lints this file with hadolint.

# ---- build: install the packages into a venv (no secret is ever passed to a build step) ----
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
RUN pip install httpx==0.28.1
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
# A one-shot job: nothing to probe while it runs; it exits 0 once OpenBao holds the broker's configuration.
HEALTHCHECK NONE
ENTRYPOINT ["python", "-m", "mspctl"]
CMD ["vault-bootstrap", "--help"]
