//! Test hosts in network namespaces: a [`Network`] is a private /24 behind a bridge, each
//! [`Host`] a namespace on it with its own address, loopback and port space, where the test
//! starts real processes (sidecars, applications, `openssl`) with `ip netns exec`.
//!
//! Layout of one network `10.<x>.<y>.0/24` (`<x>.<y>` claimed per network, so concurrent
//! runs never share one):
//!
//! - a switch namespace `ms-<x>-<y>-sw` holding the bridge (the root namespace's firewall and
//!   bridge netfilter settings never see the traffic);
//! - the root namespace (the test process, xds-server) joins it on the veth `ms-<x>-<y>` as
//!   `10.<x>.<y>.1` (the [`Network::gateway`]): from there the test reaches every host's
//!   admin API and listeners, and every host reaches the xDS port;
//! - each host `ms-<x>-<y>-<name>` joins it on its `eth0` as `10.<x>.<y>.<2..>`.
//!
//! On a host: [`Host::prefix`] runs a command there (`Proxy::start_in` takes it for a
//! sidecar), [`Host::upstream`] starts the echoing test upstream as an application on the
//! host's `127.0.0.1`, [`Host::run`] runs a bounded command (`openssl s_client`, `curl`), and
//! [`Host::capture`] records the TCP payloads an interface carries (what crossed the wire).
//!
//! Everything is removed on drop (the processes a host started first), and a network a killed
//! run left behind is removed by the next run. Needs root and `ip` (iproute2): without them
//! [`Network::create`] announces the skip and returns `None`, and under `CI=true` it panics
//! instead.

use std::{
    net::Ipv4Addr,
    path::Path,
    process::{Child, Command, Output, Stdio},
    sync::{
        Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use crate::net::POLL;

/// The first octet after `10.` a network may use: 10.200.0.0 .. 10.249.255.0, away from the
/// low ranges hosts and container runtimes usually take.
const SECOND_OCTET: u32 = 200;
const SECOND_OCTET_SPAN: u32 = 50;
/// The most hosts on one network (.2 ..= .201).
const MAX_HOSTS: u32 = 200;

/// A private /24 behind a bridge, joined by the root namespace; removed on drop.
pub struct Network {
    /// `(x, y)` of `10.x.y.0/24`.
    subnet: (u8, u8),
    /// Hosts created so far (the next one's number).
    hosts: AtomicU32,
}

/// A network namespace on a [`Network`]: its own address, loopback and ports. The processes
/// it started are killed and the namespace removed on drop.
pub struct Host {
    name: String,
    netns: String,
    addr: Ipv4Addr,
    children: Mutex<Vec<Child>>,
}

impl Network {
    /// A new network with a subnet no other live network uses, or `None` after announcing the
    /// skip when this process may not create namespaces (not root, no `ip`).
    ///
    /// # Panics
    /// Under `CI=true` when it cannot create namespaces; when setting one up fails.
    pub fn create() -> Option<Network> {
        if let Err(why) = usable() {
            assert!(
                !crate::in_ci(),
                "CI=true but network namespaces are unavailable: {why}"
            );
            crate::announce_skip("network-namespace test", &why);
            return None;
        }
        sweep_orphans();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let span = SECOND_OCTET_SPAN * 256;
        let start = std::process::id().wrapping_mul(7919) % span;
        for _ in 0..span {
            let n = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
            let subnet = ((SECOND_OCTET + n / 256) as u8, (n % 256) as u8);
            if routed(subnet) {
                continue;
            }
            // The root-namespace link name is the claim: creating it fails if another network
            // (another test, another run) holds this subnet.
            let link = link_name(subnet);
            let peer = format!("{link}-p");
            match ip(&["link", "add", &link, "type", "veth", "peer", "name", &peer]) {
                Ok(()) => {}
                Err(e) if e.contains("File exists") => continue,
                Err(e) => {
                    assert!(!crate::in_ci(), "CI=true but no test network: {e}");
                    crate::announce_skip("network-namespace test", &e);
                    return None;
                }
            }
            let network = Network {
                subnet,
                hosts: AtomicU32::new(0),
            };
            network.set_up(&peer);
            return Some(network);
        }
        panic!("no free subnet in 10.{SECOND_OCTET}.0.0/16 .. for a test network");
    }

    /// `10.x.y.1`, the root namespace's address on this network (where the test process and
    /// the xds-server are reached from the hosts).
    pub fn gateway(&self) -> Ipv4Addr {
        self.address(1)
    }

    /// `10.x.y.0/24`, for messages.
    pub fn subnet(&self) -> String {
        format!("{}/24", self.address(0))
    }

    /// A new namespace `name` on this network (`name`: a few letters, digits or `-`).
    ///
    /// # Panics
    /// When the network is full or the namespace cannot be set up.
    pub fn host(&self, name: &str) -> Host {
        assert!(
            !name.is_empty()
                && name.len() <= 20
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "host name '{name}': use up to 20 letters, digits or '-'"
        );
        let n = self.hosts.fetch_add(1, Ordering::Relaxed);
        assert!(n < MAX_HOSTS, "at most {MAX_HOSTS} hosts on one network");
        let addr = self.address(n as u8 + 2);
        let netns = format!("{}-{name}", link_name(self.subnet));
        let switch = self.switch();
        // A stale namespace of that name can only be a crashed run's: this run holds the link.
        let _ = ip(&["netns", "del", &netns]);
        let port = format!("h{n}");
        let cidr = format!("{addr}/24");
        let steps: [&[&str]; 6] = [
            &["netns", "add", &netns],
            &[
                "-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &netns,
            ],
            &["-n", &switch, "link", "set", &port, "master", "br0", "up"],
            &["-n", &netns, "addr", "add", &cidr, "dev", "eth0"],
            &["-n", &netns, "link", "set", "eth0", "up"],
            &["-n", &netns, "link", "set", "lo", "up"],
        ];
        let host = Host {
            name: name.to_string(),
            netns: netns.clone(),
            addr,
            children: Mutex::new(Vec::new()),
        };
        for step in steps {
            if let Err(e) = ip(step) {
                panic!("setting up host {name} ({addr}) on {}: {e}", self.subnet());
            }
        }
        host
    }

    fn address(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, self.subnet.0, self.subnet.1, last)
    }

    fn switch(&self) -> String {
        format!("{}-sw", link_name(self.subnet))
    }

    /// The switch namespace with its bridge, and the root namespace's port on it.
    fn set_up(&self, peer: &str) {
        let link = link_name(self.subnet);
        let switch = self.switch();
        let _ = ip(&["netns", "del", &switch]);
        let gateway = format!("{}/24", self.gateway());
        let owner = format!("{OWNER} {}", std::process::id());
        let steps: [&[&str]; 9] = [
            &["link", "set", &link, "alias", &owner],
            &["netns", "add", &switch],
            &["-n", &switch, "link", "add", "br0", "type", "bridge"],
            &["-n", &switch, "link", "set", "br0", "up"],
            &["link", "set", peer, "netns", &switch],
            &["-n", &switch, "link", "set", peer, "master", "br0", "up"],
            &["-n", &switch, "link", "set", "lo", "up"],
            &["addr", "add", &gateway, "dev", &link],
            &["link", "set", &link, "up"],
        ];
        for step in steps {
            if let Err(e) = ip(step) {
                panic!("setting up the test network {}: {e}", self.subnet());
            }
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Removing the switch removes its veths, so the root namespace's end goes with it.
        let _ = ip(&["netns", "del", &self.switch()]);
        let _ = ip(&["link", "del", &link_name(self.subnet)]);
    }
}

impl Host {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's name (as `ip netns` knows it).
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// Its address on the network.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// What runs a command inside this namespace: `ip netns exec <ns>` (which execs the
    /// command, so a child's pid is the command's own), e.g. for `Proxy::start_in`.
    pub fn prefix(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.netns]
            .map(str::to_string)
            .to_vec()
    }

    /// `program` run inside this namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.netns]).arg(program);
        command
    }

    /// Starts `command` (from [`Host::command`]) and keeps it: killed when the host is dropped.
    ///
    /// # Panics
    /// When it cannot be spawned.
    pub fn spawn(&self, command: &mut Command) -> u32 {
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {command:?} in {}: {e}", self.netns));
        let pid = child.id();
        self.children.lock().unwrap().push(child);
        pid
    }

    /// Runs `program args` inside this namespace with `stdin`, killed after `timeout`; its
    /// output (`Err` when it could not run or ran out of time).
    pub fn run(
        &self,
        program: &str,
        args: &[&str],
        stdin: &[u8],
        timeout: Duration,
    ) -> Result<Output, String> {
        use std::io::Write;
        let mut child = self
            .command(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {program} in {}: {e}", self.netns))?;
        let mut input = child.stdin.take().expect("piped stdin");
        let _ = input.write_all(stdin);
        drop(input);
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return child.wait_with_output().map_err(|e| e.to_string()),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "{program} {args:?} in {} did not finish in {timeout:?}",
                        self.netns
                    ));
                }
            }
        }
    }

    /// Starts the echoing [`crate::upstream::Upstream`] named `name` as its own process on
    /// this host's `127.0.0.1` (beside a sidecar, as an application is), and returns its port.
    ///
    /// # Panics
    /// When the `echo-upstream` binary is missing or does not say where it listens.
    pub fn upstream(&self, name: &str) -> u16 {
        use std::io::{BufRead, BufReader};
        let mut child = self
            .command(crate::target_binary("echo-upstream"))
            .arg(name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn echo-upstream in {}: {e}", self.netns));
        let stdout = child.stdout.take().expect("piped stdout");
        let pid = child.id();
        self.children.lock().unwrap().push(child);
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        line.trim()
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "echo-upstream (pid {pid}) in {} said '{}', not its address",
                    self.netns,
                    line.trim()
                )
            })
    }
}

/// A packet capture on a host's interface (see [`Host::capture`]).
pub struct Capture {
    child: Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

/// One TCP segment's payload as captured.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The sender's TCP port: the captured port for the server's side.
    pub from_port: u16,
    pub payload: Vec<u8>,
}

/// Reads an AF_PACKET socket until stdin closes (or 30 s pass) and then what the socket still
/// holds, writing each TCP payload to or from the port as `<from port: u16><length: u32>
/// <payload>` (big endian).
const CAPTURE_SCRIPT: &str = r#"
import select, socket, struct, sys
iface, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((iface, 0))
out = sys.stdout.buffer
out.write(b"ready\n"); out.flush()
stopping = False
while True:
    ready, _, _ = select.select([s] if stopping else [s, sys.stdin], [], [], 0 if stopping else 30)
    if not ready and stopping:
        break
    if not ready:
        stopping = True
        continue
    if sys.stdin in ready:
        # Stop once what the kernel already holds is read.
        stopping = True
        continue
    frame = s.recv(65535)
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        continue
    tcp = 14 + (frame[14] & 0x0F) * 4
    sport, dport = struct.unpack("!HH", frame[tcp:tcp + 4])
    if port not in (sport, dport):
        continue
    end = 14 + struct.unpack("!H", frame[16:18])[0]
    payload = frame[tcp + (frame[tcp + 12] >> 4) * 4:end]
    if payload:
        out.write(struct.pack("!HI", sport, len(payload)) + payload); out.flush()
"#;

impl Capture {
    /// Stops the capture; the segments seen, in order.
    pub fn finish(mut self) -> Vec<Segment> {
        use std::io::Read;
        drop(self.child.stdin.take());
        let mut bytes = Vec::new();
        let _ = self.stdout.read_to_end(&mut bytes);
        let _ = self.child.wait();
        let mut segments = Vec::new();
        let mut rest = &bytes[..];
        while rest.len() >= 6 {
            let from_port = u16::from_be_bytes([rest[0], rest[1]]);
            let len = u32::from_be_bytes([rest[2], rest[3], rest[4], rest[5]]) as usize;
            let Some(payload) = rest.get(6..6 + len) else {
                break;
            };
            segments.push(Segment {
                from_port,
                payload: payload.to_vec(),
            });
            rest = &rest[6 + len..];
        }
        segments
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Host {
    /// Starts capturing the TCP payloads to and from `port` on `iface` (a raw packet socket,
    /// with `python3`: no capture tool needed), once the socket is bound. `None` after
    /// announcing the skip when `python3` cannot run; under `CI=true` that panics.
    pub fn capture(&self, iface: &str, port: u16) -> Option<Capture> {
        use std::io::BufRead;
        let child = self
            .command("python3")
            .args(["-c", CAPTURE_SCRIPT, iface, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(e) => {
                assert!(!crate::in_ci(), "CI=true but no python3 for a capture: {e}");
                crate::announce_skip("packet capture", &format!("python3: {e}"));
                return None;
            }
        };
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            assert!(!crate::in_ci(), "CI=true but the capture did not start");
            crate::announce_skip("packet capture", "the capture script did not start");
            return None;
        }
        Some(Capture { child, stdout })
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        for mut child in self.children.lock().unwrap().drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = ip(&["netns", "del", &self.netns]);
    }
}

/// The root-namespace link's alias, followed by the owning process id: how a later run
/// finds what a killed run left behind.
const OWNER: &str = "integration-netns-owner";

/// Removes the networks (link and namespaces) of test processes that no longer exist: a run
/// killed before its drops ran. Best effort.
fn sweep_orphans() {
    let Ok(links) = Command::new("ip").args(["-o", "link", "show"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&links.stdout).lines() {
        let Some(pid) = line
            .split_once(&format!("alias {OWNER} "))
            .and_then(|(_, rest)| rest.split_whitespace().next())
        else {
            continue;
        };
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        let Some(link) = line
            .split(": ")
            .nth(1)
            .and_then(|name| name.split('@').next())
        else {
            continue;
        };
        let namespaces = Command::new("ip").args(["netns", "list"]).output();
        let namespaces = namespaces.map(|o| o.stdout).unwrap_or_default();
        for ns in String::from_utf8_lossy(&namespaces).lines() {
            let name = ns.split_whitespace().next().unwrap_or_default();
            if name.starts_with(&format!("{link}-")) {
                let _ = ip(&["netns", "del", name]);
            }
        }
        let _ = ip(&["link", "del", link]);
    }
}

/// `ms-<x>-<y>`: at most 10 characters, so `<link>-p` fits an interface name (15).
fn link_name((x, y): (u8, u8)) -> String {
    format!("ms-{x}-{y}")
}

/// Why this process cannot create namespaces, if it cannot.
fn usable() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("?");
    if euid != "0" {
        return Err(format!("needs root (effective uid {euid})"));
    }
    if !Path::new("/proc/self/ns/net").exists() {
        return Err("no network namespaces in this kernel".into());
    }
    ip(&["-V"]).map_err(|e| format!("needs iproute2's `ip`: {e}"))?;
    Ok(())
}

/// Whether the root namespace already routes `10.x.y.0/24` somewhere (a real network, or a
/// crashed run's leftover).
fn routed((x, y): (u8, u8)) -> bool {
    let probe = format!("10.{x}.{y}.1");
    Command::new("ip")
        .args(["-4", "route", "show", "match", &probe])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| !l.starts_with("default"))
        })
}

/// Runs `ip args`; `Err` with its stderr when it fails.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
