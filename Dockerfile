# One image for the service and the indexer job (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY clients/python clients/python
RUN pip install --no-cache-dir ./clients/python
COPY pyproject.toml README.md ./
COPY latent latent
COPY indexer indexer
COPY service service
COPY cli cli
COPY migrations migrations
RUN pip install --no-cache-dir .
ENV ASSETSEARCH_DATA_DIR=/data \
    ASSETSEARCH_HOST=0.0.0.0
EXPOSE 50051
ENTRYPOINT ["assetsearch"]
CMD ["serve"]
