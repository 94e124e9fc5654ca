# dealscore scoring API: `docker build -t dealscore .` then
#   docker run -p 8000:8000 -v dealscore-data:/data \
#     -e DEALSCORE_API_KEYS_FILE=/data/api_keys.yaml -e DEALSCORE_MODEL_PATH=/data/bundle dealscore
# (or MLFLOW_TRACKING_URI=http://mlflow:5000 to load the registry's champion). Runs `dealscore serve`.

# ---- build: install the package and its pinned dependencies into a virtualenv
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
COPY service ./service
RUN pip install -c constraints.txt . && pip check

# ---- runtime: the virtualenv only, a non-root user, data on a volume
FROM python:3.11-slim AS runtime
# LightGBM needs the OpenMP runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin dealscore \
    && mkdir -p /data \
    && chown dealscore:dealscore /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DEALSCORE_DATA_DIR=/data \
    DEALSCORE_LOG_JSON=true
USER dealscore
WORKDIR /home/dealscore
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
CMD ["dealscore", "serve", "--host", "0.0.0.0", "--port", "8000"]
