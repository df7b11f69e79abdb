//! The glue around the [`Engine`]: keeps a stream per [`StreamKey`] the configuration needs,
//! feeds it events, carries out its effects (publish the runtime snapshot, hand the listener
//! set to the listener manager) and only then sends its requests, so an ACK always follows
//! the apply. While the server is away the last good configuration keeps serving.

use std::{collections::HashMap, sync::Arc, time::Instant};

use envoy_types::pb::envoy::config::core::v3::Node;
use tokio::{sync::mpsc, task::JoinHandle};
use xds_core::TypeUrl;

use super::{
    Handle, ListenerSink, Outgoing, StreamKey,
    engine::{Effects, Engine},
    live::Live,
    stream::{self, Event},
};
use crate::{
    bootstrap::{Bootstrap, Channel},
    runtime::Runtime,
};

/// An open stream generation.
struct Open {
    generation: u64,
    requests: mpsc::UnboundedSender<Outgoing>,
    /// The node went out on this generation's first request.
    node_sent: bool,
}

struct Client<S> {
    handle: Handle,
    runtime: Runtime,
    sink: Arc<S>,
    node: Node,
    routing: Vec<(TypeUrl, StreamKey, Channel)>,
    tasks: HashMap<StreamKey, JoinHandle<()>>,
    open: HashMap<StreamKey, Open>,
    events_tx: mpsc::Sender<Event>,
    live: Live,
}

impl<S> Drop for Client<S> {
    fn drop(&mut self) {
        for task in self.tasks.values() {
            task.abort();
        }
    }
}

/// Runs the xDS client until the task is dropped: applies the bootstrap's static resources,
/// then keeps the configured streams up and the proxy configured from them.
pub async fn run<S: ListenerSink>(
    bootstrap: Arc<Bootstrap>,
    handle: Handle,
    runtime: Runtime,
    sink: Arc<S>,
) {
    let (events_tx, mut events) = mpsc::channel(64);
    let mut client = Client {
        handle,
        runtime,
        sink,
        node: super::node_proto(&bootstrap.node),
        routing: bootstrap
            .dynamic
            .as_ref()
            .map(super::routing)
            .unwrap_or_default(),
        tasks: HashMap::new(),
        open: HashMap::new(),
        events_tx,
        live: Live::default(),
    };
    client.step(|e, now| e.start(now)).await;
    loop {
        client.ensure_streams();
        let deadline = client.handle.lock().next_deadline();
        let tick = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => client.on_event(event).await,
                None => return,
            },
            () = tick => {
                client.step(|e, now| e.on_tick(now)).await;
            }
        }
    }
}

impl<S: ListenerSink> Client<S> {
    /// Starts the stream task of every type that has something to ask for.
    fn ensure_streams(&mut self) {
        let wanted = self.handle.lock().wanted();
        for t in wanted {
            let Some((_, key, channel)) = self.routing.iter().find(|(rt, _, _)| *rt == t) else {
                continue;
            };
            if !self.tasks.contains_key(key) {
                let task = stream::spawn(key.clone(), channel.clone(), self.events_tx.clone());
                self.tasks.insert(key.clone(), task);
            }
        }
    }

    fn types_of(&self, key: &StreamKey) -> Vec<TypeUrl> {
        let on_key = self.routing.iter().filter(|(_, k, _)| k == key);
        on_key.map(|(t, _, _)| t.clone()).collect()
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Opened {
                key,
                generation,
                requests,
            } => {
                tracing::info!(stream = ?key, "xDS stream open");
                let types = self.types_of(&key);
                self.connected_state(&types, 1);
                let open = Open {
                    generation,
                    requests,
                    node_sent: false,
                };
                self.open.insert(key, open);
                let requests = self.handle.lock().on_connected(&types);
                self.send(requests);
            }
            Event::Response {
                key,
                generation,
                update,
            } => {
                if self
                    .open
                    .get(&key)
                    .is_none_or(|o| o.generation != generation)
                {
                    return;
                }
                let type_url = update.type_url.clone();
                let stats = self.runtime.stats.xds(type_url.short_name());
                stats.update_attempt.inc();
                let answers = self.step(|e, now| e.on_response(update, now)).await;
                match answers
                    .iter()
                    .find(|o| o.is_answer() && o.type_url() == type_url)
                {
                    Some(o) if o.is_nack() => stats.update_rejected.inc(),
                    Some(_) => stats.update_success.inc(),
                    None => {}
                }
            }
            Event::Closed {
                key,
                generation,
                error,
            } => {
                if self
                    .open
                    .get(&key)
                    .is_some_and(|o| o.generation == generation)
                {
                    self.open.remove(&key);
                }
                tracing::warn!(stream = ?key, %error, "xDS stream down; keeping the last configuration and retrying");
                let types = self.types_of(&key);
                self.connected_state(&types, 0);
                self.handle.lock().on_disconnected(&types);
            }
        }
    }

    fn connected_state(&self, types: &[TypeUrl], value: u64) {
        for t in types {
            self.runtime
                .stats
                .xds(t.short_name())
                .connected_state
                .set(value);
        }
    }

    /// One engine step: the event, its effects, then the requests (returned after sending).
    async fn step(&mut self, event: impl FnOnce(&mut Engine, Instant) -> Effects) -> Vec<Outgoing> {
        let effects = {
            let mut engine = self.handle.lock();
            event(&mut engine, Instant::now())
        };
        if effects.publish {
            self.publish();
        }
        let refused = match effects.listeners {
            Some(listeners) => {
                let listeners = listeners.iter().map(|l| (**l).clone()).collect();
                self.sink.apply(listeners).await
            }
            None => Vec::new(),
        };
        let requests = self.handle.lock().complete(refused, Instant::now());
        self.send(requests.clone());
        requests
    }

    /// Publishes the runtime snapshot of the store's active clusters and routes.
    fn publish(&mut self) {
        let engine = self.handle.lock();
        self.live.publish(engine.store(), &self.runtime);
    }

    /// Sends each request on its type's open stream, with the node on a generation's first
    /// request (or on every request without `set_node_on_first_message_only`).
    fn send(&mut self, requests: Vec<Outgoing>) {
        for mut request in requests {
            let type_url = request.type_url();
            let Some((_, key, channel)) = self.routing.iter().find(|(t, _, _)| *t == type_url)
            else {
                continue;
            };
            let Some(open) = self.open.get_mut(key) else {
                continue;
            };
            if !open.node_sent || !channel.node_on_first_message_only {
                request.set_node(self.node.clone());
                open.node_sent = true;
            }
            tracing::debug!(?request, "xDS request");
            // A closed stream is reported by its task; its next generation starts over.
            let _ = open.requests.send(request);
        }
    }
}
