//! The admin HTTP API of `mingle-server` (#17): the game's backend sets voice rules on a
//! standalone server. JSON over HTTP/1.1 (hyper, on a current-thread tokio runtime in a thread
//! of its own); each request becomes a command the app applies in
//! [`PreUpdate`](bevy::app::PreUpdate), so a change takes effect at the next proximity tick.
//!
//! Endpoints (README "Voice rules"); every one answers JSON, errors as `{"error": "..."}`:
//! - `GET /v1/peers/{peer}`: its realm, groups, voice range and introduced peers.
//! - `PUT|DELETE /v1/peers/{peer}/groups/{group}`: join or leave a group of the peer's realm
//!   (409 when the group is full).
//! - `PUT /v1/peers/{peer}/voice-range` with `{"multiplier": 2.0}` (clamped to the bounds),
//!   `DELETE` to hand the choice back to the game's component or the client.
//! - `PUT|DELETE /v1/blocks/{a}/{b}`: a persistent block (outlives connections).
//!
//! Loopback by default; bound off loopback it refuses to start without a bearer secret, and
//! with one every request must carry `Authorization: Bearer <secret>`.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bevy::app::{App, Plugin, PreUpdate};
use bevy::log::{info, warn};
use bevy::prelude::{IntoScheduleConfigs, Query, Res, ResMut, Resource};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::components::{NearbyPeers, PeerDirectory};
use super::rules::{VoiceRulesConfig, VoiceRulesState};
use super::tick::ProximityIndex;
use crate::protocol::PeerId;
use crate::proximity::{GroupId, RuleError};

/// Largest request body read, bytes.
const MAX_BODY_BYTES: usize = 1024;

/// How long a request waits for the app to apply it.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the admin API did not start.
#[derive(Debug)]
pub enum AdminError {
    /// Off loopback without a secret.
    NoSecret(SocketAddr),
    /// The socket could not be bound.
    Bind(SocketAddr, std::io::Error),
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminError::NoSecret(addr) => write!(
                f,
                "admin API on {addr} is off loopback: give a bearer secret \
                 (--admin-secret-file FILE or MINGLE_ADMIN_SECRET)"
            ),
            AdminError::Bind(addr, e) => write!(f, "cannot bind the admin API on {addr}: {e}"),
        }
    }
}

impl std::error::Error for AdminError {}

/// One thing the backend asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Peer(PeerId),
    Join(PeerId, GroupId),
    Leave(PeerId, GroupId),
    Voice(PeerId, Option<f32>),
    Block(PeerId, PeerId),
    Unblock(PeerId, PeerId),
}

type Reply = (StatusCode, Value);

struct Command {
    op: Op,
    reply: Sender<Reply>,
}

/// The app's end of the admin API: requests waiting to be applied.
#[derive(Resource)]
struct AdminInbox(Mutex<Receiver<Command>>);

/// Serves the admin HTTP API on a socket bound by [`MingleAdminPlugin::bind`].
pub struct MingleAdminPlugin {
    addr: SocketAddr,
    socket: Mutex<Option<(TcpListener, Option<String>)>>,
}

impl MingleAdminPlugin {
    /// Binds `addr` (TCP). Off loopback a `secret` is required.
    ///
    /// # Errors
    /// [`AdminError::NoSecret`] off loopback without a secret; [`AdminError::Bind`].
    pub fn bind(addr: SocketAddr, secret: Option<String>) -> Result<Self, AdminError> {
        let secret = secret
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        if !addr.ip().is_loopback() && secret.is_none() {
            return Err(AdminError::NoSecret(addr));
        }
        let listener = TcpListener::bind(addr).map_err(|e| AdminError::Bind(addr, e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| AdminError::Bind(addr, e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| AdminError::Bind(addr, e))?;
        Ok(MingleAdminPlugin {
            addr,
            socket: Mutex::new(Some((listener, secret))),
        })
    }

    /// The address bound (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Plugin for MingleAdminPlugin {
    fn build(&self, app: &mut App) {
        let Some((listener, secret)) = self.socket.lock().ok().and_then(|mut s| s.take()) else {
            warn!("admin API: plugin added twice, the second is ignored");
            return;
        };
        let (tx, rx) = channel();
        app.insert_resource(AdminInbox(Mutex::new(rx))).add_systems(
            PreUpdate,
            apply_admin_commands.after(super::rules::sync_voice_rules),
        );
        let addr = self.addr;
        let spawned = std::thread::Builder::new()
            .name("mingle-admin".into())
            .spawn(move || serve(listener, secret, tx));
        match spawned {
            Ok(_) => info!("admin API on http://{addr}/v1/"),
            Err(e) => warn!("admin API: cannot start its thread: {e}"),
        }
    }
}

/// The admin thread: a current-thread runtime accepting connections until the process ends.
fn serve(listener: TcpListener, secret: Option<String>, tx: Sender<Command>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return warn!("admin API: no runtime: {e}"),
    };
    let secret = Arc::new(secret);
    let tx = Arc::new(Mutex::new(tx));
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => return warn!("admin API: {e}"),
        };
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (secret, tx) = (Arc::clone(&secret), Arc::clone(&tx));
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let (secret, tx) = (Arc::clone(&secret), Arc::clone(&tx));
                    async move { Ok::<_, Infallible>(handle(req, &secret, &tx).await) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
}

fn respond(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    respond(status, json!({ "error": message }))
}

/// Compares without an early exit, so timing does not tell how much of a guess was right.
fn same_secret(given: &[u8], secret: &[u8]) -> bool {
    given.len() == secret.len() && given.iter().zip(secret).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0
}

fn authorized(req: &Request<Incoming>, secret: &Option<String>) -> bool {
    let Some(secret) = secret else {
        return true;
    };
    req.headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .is_some_and(|given| same_secret(given, secret.as_bytes()))
}

/// The operation a method and path name, or why they are refused.
fn route(method: &Method, path: &str, body: &[u8]) -> Result<Op, (StatusCode, &'static str)> {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let id = |s: &str| {
        s.parse::<u64>()
            .map_err(|_| (StatusCode::BAD_REQUEST, "ids are unsigned integers"))
    };
    match (method, parts.as_slice()) {
        (&Method::GET, ["v1", "peers", p]) => Ok(Op::Peer(PeerId(id(p)?))),
        (&Method::PUT, ["v1", "peers", p, "groups", g]) => {
            Ok(Op::Join(PeerId(id(p)?), GroupId(id(g)?)))
        }
        (&Method::DELETE, ["v1", "peers", p, "groups", g]) => {
            Ok(Op::Leave(PeerId(id(p)?), GroupId(id(g)?)))
        }
        (&Method::PUT, ["v1", "peers", p, "voice-range"]) => {
            let multiplier = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.get("multiplier").and_then(Value::as_f64))
                .filter(|m| m.is_finite() && *m > 0.0)
                .ok_or((
                    StatusCode::BAD_REQUEST,
                    "body must be {\"multiplier\": <positive number>}",
                ))?;
            Ok(Op::Voice(PeerId(id(p)?), Some(multiplier as f32)))
        }
        (&Method::DELETE, ["v1", "peers", p, "voice-range"]) => Ok(Op::Voice(PeerId(id(p)?), None)),
        (&Method::PUT, ["v1", "blocks", a, b]) => Ok(Op::Block(PeerId(id(a)?), PeerId(id(b)?))),
        (&Method::DELETE, ["v1", "blocks", a, b]) => {
            Ok(Op::Unblock(PeerId(id(a)?), PeerId(id(b)?)))
        }
        _ => Err((StatusCode::NOT_FOUND, "no such endpoint")),
    }
}

async fn handle(
    req: Request<Incoming>,
    secret: &Option<String>,
    tx: &Mutex<Sender<Command>>,
) -> Response<Full<Bytes>> {
    if !authorized(&req, secret) {
        let mut response = error(StatusCode::UNAUTHORIZED, "bearer secret required");
        response.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer"),
        );
        return response;
    }
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "body over 1 KiB"),
    };
    let op = match route(&parts.method, parts.uri.path(), &body) {
        Ok(op) => op,
        Err((status, why)) => return error(status, why),
    };
    let (reply_tx, reply_rx) = channel();
    let sent = tx
        .lock()
        .map(|tx| {
            tx.send(Command {
                op,
                reply: reply_tx,
            })
            .is_ok()
        })
        .unwrap_or(false);
    if !sent {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping");
    }
    let reply =
        tokio::task::spawn_blocking(move || reply_rx.recv_timeout(REPLY_TIMEOUT).ok()).await;
    match reply {
        Ok(Some((status, body))) => respond(status, body),
        _ => error(StatusCode::SERVICE_UNAVAILABLE, "the server did not answer"),
    }
}

/// Applies the requests that came in since the last frame, answering each.
fn apply_admin_commands(
    inbox: Res<AdminInbox>,
    mut state: ResMut<VoiceRulesState>,
    mut index: ResMut<ProximityIndex>,
    config: Res<VoiceRulesConfig>,
    directory: Res<PeerDirectory>,
    sets: Query<&NearbyPeers>,
) {
    let Ok(inbox) = inbox.0.lock() else {
        return;
    };
    while let Ok(Command { op, reply }) = inbox.try_recv() {
        let core = &mut index.0;
        let unknown = |p: PeerId| {
            (
                StatusCode::NOT_FOUND,
                json!({ "error": format!("{p} is not connected") }),
            )
        };
        let answer = match op {
            Op::Peer(p) => match state.realm_of(p) {
                None => unknown(p),
                Some(realm) => {
                    let nearby: Vec<u64> = directory
                        .get(p)
                        .and_then(|e| sets.get(e).ok())
                        .map(|s| s.iter().map(|q| q.0).collect())
                        .unwrap_or_default();
                    let groups: Vec<u64> = core.groups_of(p).map(|(_, g)| g.0).collect();
                    (
                        StatusCode::OK,
                        json!({
                            "peer": p.0,
                            "realm": realm.0,
                            "groups": groups,
                            "voice_range": core.voice_range(p),
                            "nearby": nearby,
                        }),
                    )
                }
            },
            Op::Join(p, g) if state.realm_of(p).is_some() => match state.assign_group(core, p, g) {
                Ok(joined) => (StatusCode::OK, json!({ "joined": joined })),
                Err(RuleError::GroupFull { limit }) => (
                    StatusCode::CONFLICT,
                    json!({ "error": format!("{g} is full ({limit} members)") }),
                ),
                Err(err) => (StatusCode::BAD_REQUEST, json!({ "error": err.to_string() })),
            },
            Op::Leave(p, g) if state.realm_of(p).is_some() => (
                StatusCode::OK,
                json!({ "left": state.unassign_group(core, p, g) }),
            ),
            Op::Voice(p, v) if state.realm_of(p).is_some() => {
                state.set_admin_voice(core, &config, p, v);
                (
                    StatusCode::OK,
                    json!({ "voice_range": state.voice_of(&config, p) }),
                )
            }
            Op::Join(p, _) | Op::Leave(p, _) | Op::Voice(p, _) => unknown(p),
            Op::Block(a, b) if a == b => (
                StatusCode::BAD_REQUEST,
                json!({ "error": "a peer cannot block itself" }),
            ),
            Op::Block(a, b) => (
                StatusCode::OK,
                json!({ "blocked": state.admin_block(core, a, b) }),
            ),
            Op::Unblock(a, b) => (
                StatusCode::OK,
                json!({ "unblocked": state.admin_unblock(core, a, b) }),
            ),
        };
        let _ = reply.send(answer);
    }
}
