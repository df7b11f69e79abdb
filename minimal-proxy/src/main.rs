//! The `minimal-proxy` binary: Envoy's command line, then [`minimal_proxy::app`].

fn main() {
    eprintln!("minimal-proxy: being built");
    std::process::exit(2);
}
