# syntax=docker/dockerfile:1
# Builds every command in cmd/ (stevedore, dispatcher, worker,
# stevedore-registry) into /usr/local/bin of a small Debian image that runs
# as a non-root user. compose.yaml picks the command per service.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/ ./cmd/...

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 stevedore \
 && useradd --system --uid 10001 --gid stevedore --home-dir /var/lib/stevedore --create-home --shell /usr/sbin/nologin stevedore
COPY --from=build /out/ /usr/local/bin/
USER stevedore:stevedore
WORKDIR /var/lib/stevedore
ENV STEVEDORE_ADDR=:8080
EXPOSE 8080
CMD ["stevedore", "--help"]
