//! minimal-proxy: a small Rust data plane that will speak Envoy's xDS client protocol.
//!
//! Not built yet: its own issue fills this crate (xds client, listeners, HTTP/TCP proxying,
//! upstream clusters, admin). Until then the binary says so and exits, rather than pretend.

fn main() {
    eprintln!(
        "minimal-proxy is not implemented yet; use Envoy with a bootstrap from xds-server for now"
    );
    std::process::exit(2);
}
