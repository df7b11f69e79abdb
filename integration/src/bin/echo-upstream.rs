//! The echoing test upstream ([`integration::upstream::Upstream`]) as its own process, for
//! hosts in network namespaces (`integration::netns`): binds `127.0.0.1` on an ephemeral
//! port where it starts, prints that address on one line, and serves until its stdin closes
//! (the test ended or died).
//!
//! Usage: `echo-upstream <name>`

use integration::upstream::Upstream;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "upstream".into());
    let upstream = Upstream::start(&name);
    println!("{}", upstream.addr());
    let stdin_closed =
        tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()));
    let _ = stdin_closed.await;
}
