# syntax=docker/dockerfile:1
#
# goat-gateway: a static binary on a distroless base, running as a non-root
# user. docker-compose.yml builds it for its three gateways.
#
#   docker build -t goat-gateway --build-arg VERSION=$(git describe --always) .
#   docker run -p 8080:8080 -v goat-data:/data -v goat-keys:/keys goat-gateway serve --dev

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# CGO off: a static binary that needs no libc in the final image.
RUN CGO_ENABLED=0 GOWORK=off GOFLAGS=-buildvcs=false go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/goat-gateway ./cmd/goat-gateway
# Empty data and keys directories, owned by the runtime user: a named
# volume mounted there starts with this owner and mode, so the gateway can
# write it without running as root.
RUN mkdir -p /out/data /out/keys && chmod 0700 /out/data /out/keys

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/goat-gateway /usr/local/bin/goat-gateway
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build --chown=65532:65532 /out/keys /keys
# nonroot (65532) from the distroless image.
USER 65532:65532
ENV GOAT_LISTEN=0.0.0.0:8080 \
    GOAT_DATA_DIR=/data \
    GOAT_KEYS_DIR=/keys
EXPOSE 8080
VOLUME ["/data", "/keys"]
ENTRYPOINT ["/usr/local/bin/goat-gateway"]
CMD ["serve"]
