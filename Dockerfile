# xds-server and minimal-proxy in one image: the builder compiles, the runtime image carries
# only the two binaries (the entrypoint is xds-server; the demo runs minimal-proxy from it too).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p xds-server -p minimal-proxy

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 xds
COPY --from=build /src/target/release/xds-server /src/target/release/minimal-proxy /usr/local/bin/
USER xds
WORKDIR /var/lib/xds-server
# The admin API listens on all interfaces inside the container; publish it deliberately.
ENV XDS_SERVER_ADMIN_ADDR=0.0.0.0:9090 XDS_SERVER_XDS_ADDR=0.0.0.0:18000
EXPOSE 9090 18000
ENTRYPOINT ["/usr/local/bin/xds-server"]
