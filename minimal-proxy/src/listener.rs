//! The listener manager: makes the running listeners exactly what LDS (or the bootstrap) says.
//! A new listener binds and starts accepting; a changed one keeps its bound socket (no
//! unbind/rebind window) and hands it to a new generation while the old generation's
//! connections drain; a removed one stops accepting and drains. A listener that cannot bind or
//! open its access log is rejected by name, as Envoy NACKs it, and the others still apply.

mod generation;
#[cfg(test)]
mod tests;

use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{net::TcpListener, sync::Mutex, task::JoinHandle};

use crate::{
    access_log::{self, AccessLogs},
    config::{ListenerConfig, ListenerFilter, Rejection},
    http::ConnectionManager,
    runtime::Runtime,
    tcp::TcpProxyFilter,
    telemetry::GrpcLoggers,
    tls::server::Acceptor,
};
use generation::{Chain, Chains, Filter, Generation};

/// Owns every listener of the process.
#[derive(Debug)]
pub struct Manager {
    runtime: Runtime,
    /// How long a changed or removed listener's connections may take to finish.
    drain_time: Duration,
    /// Access log writers, shared across listeners and generations.
    files: access_log::Files,
    /// gRPC access loggers, shared likewise.
    grpc_loggers: GrpcLoggers,
    /// Only `apply` and `drain_all` take it: never on the request path.
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    active: HashMap<String, Active>,
    /// Generations still draining, awaited by `drain_all`.
    draining: Vec<JoinHandle<()>>,
}

/// A running listener.
#[derive(Debug)]
struct Active {
    config: ListenerConfig,
    socket: Arc<TcpListener>,
    /// The bound address (the configured one, with the port the kernel chose for port 0).
    local_addr: SocketAddr,
    generation: Generation,
}

impl Manager {
    pub fn new(runtime: Runtime, drain_time: Duration) -> Manager {
        Manager {
            runtime,
            drain_time,
            files: access_log::Files::default(),
            grpc_loggers: GrpcLoggers::default(),
            state: Mutex::new(State::default()),
        }
    }

    /// Where gRPC access logs go (the node and the bootstrap's static clusters); without
    /// it, a listener with a gRPC access log is refused.
    pub fn with_grpc_loggers(mut self, loggers: GrpcLoggers) -> Manager {
        self.grpc_loggers = loggers;
        self
    }

    /// Makes the running set exactly `listeners` (by name); returns the ones refused, each
    /// naming the listener and what went wrong. A refused change leaves the old version of
    /// that listener running, as Envoy does.
    pub async fn apply(&self, listeners: Vec<ListenerConfig>) -> Vec<Rejection> {
        let mut state = self.state.lock().await;
        state.draining.retain(|task| !task.is_finished());
        let mut rejections = Vec::new();

        // Removed listeners go first, so their sockets can serve a new listener of the same
        // address in this same update.
        let mut spare: HashMap<SocketAddr, Arc<TcpListener>> = HashMap::new();
        let wanted: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
        let removed: Vec<String> = state
            .active
            .keys()
            .filter(|name| !wanted.contains(&name.as_str()))
            .cloned()
            .collect();
        for name in removed {
            if let Some(active) = state.active.remove(&name) {
                tracing::info!(listener = %name, "listener removed; draining");
                state
                    .draining
                    .push(active.generation.drain(self.drain_time));
                spare.insert(active.local_addr, active.socket);
            }
        }

        let mut seen = Vec::with_capacity(listeners.len());
        for config in listeners {
            if seen.contains(&config.name) {
                rejections.push(rejection(
                    &config,
                    "name",
                    "duplicate listener name in the update",
                ));
                continue;
            }
            seen.push(config.name.clone());
            if let Some(active) = state.active.get(&config.name)
                && active.config == config
            {
                continue;
            }
            let chains = match self.chains(&config) {
                Ok(chains) => chains,
                Err(r) => {
                    rejections.push(r);
                    continue;
                }
            };
            let old = state.active.remove(&config.name);
            let socket = match &old {
                Some(old)
                    if old.config.address == config.address || old.local_addr == config.address =>
                {
                    Ok(old.socket.clone())
                }
                _ => match spare.remove(&config.address) {
                    Some(socket) => Ok(socket),
                    None => TcpListener::bind(config.address).await.map(Arc::new),
                },
            };
            let socket = match socket {
                Ok(socket) => socket,
                Err(e) => {
                    let reason = format!("cannot bind {}: {e}", config.address);
                    rejections.push(rejection(&config, "address", &reason));
                    if let Some(old) = old {
                        state.active.insert(config.name.clone(), old);
                    }
                    continue;
                }
            };
            let local_addr = socket.local_addr().unwrap_or(config.address);
            let stats = self.runtime.stats.listener(&stats_name(local_addr));
            let generation = Generation::start(socket.clone(), chains, stats);
            match old {
                Some(old) => {
                    tracing::info!(listener = %config.name, "listener changed; old connections draining");
                    state.draining.push(old.generation.drain(self.drain_time));
                }
                None => {
                    tracing::info!(listener = %config.name, address = %local_addr, "listener started")
                }
            }
            state.active.insert(
                config.name.clone(),
                Active {
                    config,
                    socket,
                    local_addr,
                    generation,
                },
            );
        }
        rejections
    }

    /// Stops every listener and drains all connections (also those of earlier generations)
    /// for up to `deadline`; what is left then is cut. For process shutdown.
    pub async fn drain_all(&self, deadline: Duration) {
        let mut state = self.state.lock().await;
        let active: Vec<Active> = state.active.drain().map(|(_, a)| a).collect();
        let mut tasks: Vec<JoinHandle<()>> = std::mem::take(&mut state.draining);
        tasks.extend(active.into_iter().map(|a| a.generation.drain(deadline)));
        drop(state);
        for task in tasks {
            let _ = task.await;
        }
    }

    /// The address a listener is bound to (with the port chosen for a port-0 address).
    pub async fn local_addr(&self, name: &str) -> Option<SocketAddr> {
        self.state
            .lock()
            .await
            .active
            .get(name)
            .map(|a| a.local_addr)
    }

    /// The filter chains a listener's connections are served with.
    fn chains(&self, config: &ListenerConfig) -> Result<Arc<Chains>, Rejection> {
        let mut chains = Vec::with_capacity(config.chains.len());
        for (i, chain) in config.chains.iter().enumerate() {
            let tls = match &chain.tls {
                Some(tls) => Some(Acceptor::new(tls, &self.runtime.secrets).map_err(|e| {
                    let field = format!("filter_chains[{i}].transport_socket");
                    rejection(config, &field, &e.to_string())
                })?),
                None => None,
            };
            chains.push(Chain {
                transport: chain.transport,
                tls,
                filter: self.filter(config, &chain.filter)?,
            });
        }
        Ok(Arc::new(Chains::new(chains, config.tls_inspector)))
    }

    /// The filter a chain's connections are served with.
    fn filter(
        &self,
        config: &ListenerConfig,
        filter: &ListenerFilter,
    ) -> Result<Filter, Rejection> {
        let logs = |configs, grpc| {
            AccessLogs::new(configs, grpc, &self.files, &self.grpc_loggers)
                .map_err(|e| rejection(config, "access_log", &e.to_string()))
        };
        Ok(match filter {
            ListenerFilter::Http(hcm) => Filter::Http(ConnectionManager::new(
                hcm,
                self.runtime.clone(),
                logs(&hcm.access_log, &hcm.grpc_access_log)?,
            )),
            ListenerFilter::Tcp(tcp) => Filter::Tcp(TcpProxyFilter::new(
                tcp,
                self.runtime.clone(),
                logs(&tcp.access_log, &[])?,
            )),
        })
    }
}

/// Envoy's listener stats name: `127.0.0.1_10000`.
fn stats_name(address: SocketAddr) -> String {
    format!("{}_{}", address.ip(), address.port())
}

fn rejection(config: &ListenerConfig, field: &str, reason: &str) -> Rejection {
    Rejection {
        resource: format!("listener '{}'", config.name),
        field: field.to_string(),
        reason: reason.to_string(),
    }
}
