//! Shared test harness: one server `App` and several client `App`s in one process, talking
//! over real renet/UDP on 127.0.0.1, stepped by hand.
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

pub mod memory;
pub mod raw;
pub mod transport_fuzz;

use std::net::SocketAddr;
use std::time::Duration;

use bevy::ecs::system::RunSystemOnce;
use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use mingle::client::{
    MessageRejected, MingleClient, MingleClientConfig, MingleClientPlugin, MingleClientStats,
    MingleConnectionState, MingleLocal, MingleServer, MingleWelcome, NearbyPeers, PeerEntered,
    PeerLeft, SignalReceived,
};
use mingle::protocol::{ConnectionOutcome, PeerId, Realm, RejectReason, SpaceId};
use mingle::server::{
    MingleServerConfig, MingleServerPlugin, ServerAddress, ServerStats, TurnSecret,
};

/// Everything one client app was told, in order.
#[derive(Debug, Default, Resource)]
pub struct Recorder {
    pub entered: Vec<PeerId>,
    pub left: Vec<PeerId>,
    pub signals: Vec<(PeerId, Vec<u8>)>,
    pub rejections: Vec<RejectReason>,
}

fn record(
    mut rec: ResMut<Recorder>,
    mut entered: MessageReader<PeerEntered>,
    mut left: MessageReader<PeerLeft>,
    mut signals: MessageReader<SignalReceived>,
    mut rejected: MessageReader<MessageRejected>,
) {
    rec.entered.extend(entered.read().map(|m| m.0));
    rec.left.extend(left.read().map(|m| m.0));
    rec.signals
        .extend(signals.read().map(|m| (m.from, m.payload.clone())));
    rec.rejections.extend(rejected.read().map(|m| m.0));
}

/// A server app bound to 127.0.0.1:0, one proximity tick per `update()`; secure with a key.
pub fn server_app(config: MingleServerConfig, key: Option<[u8; 32]>) -> App {
    let mut plugin = loopback_plugin(config);
    if let Some(key) = key {
        plugin = plugin.with_private_key(key);
    }
    app_around(plugin)
}

/// The server plugin of `config`, bound to 127.0.0.1:0.
fn loopback_plugin(config: MingleServerConfig) -> MingleServerPlugin {
    MingleServerPlugin::new(MingleServerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..config
    })
}

/// A server app around `plugin`, one proximity tick per `update()` (each advances the app's
/// clock by one tick period), started (its socket bound).
fn app_around(plugin: MingleServerPlugin) -> App {
    let period = Duration::from_secs_f64(1.0 / plugin.config.tick_hz);
    let mut app = App::new();
    app.add_plugins(MinimalPlugins)
        .insert_resource(TimeUpdateStrategy::ManualDuration(period))
        .add_plugins(plugin);
    app.update();
    app
}

/// One simulated game client.
pub struct Client {
    pub id: PeerId,
    pub app: App,
}

impl Client {
    pub fn recorder(&self) -> &Recorder {
        self.app.world().resource::<Recorder>()
    }

    pub fn nearby(&self) -> Vec<PeerId> {
        self.app.world().resource::<NearbyPeers>().iter().collect()
    }

    pub fn stats(&self) -> MingleClientStats {
        *self.app.world().resource::<MingleClientStats>()
    }

    pub fn welcomed(&self) -> bool {
        self.app.world().get_resource::<MingleWelcome>().is_some()
    }

    /// Runs `f` as a system with the client's [`MingleClient`] parameter.
    pub fn with_api<R: Send + Sync + 'static>(
        &mut self,
        f: impl FnOnce(&mut MingleClient) -> R + Send + Sync + 'static,
    ) -> R {
        let mut f = Some(f);
        self.app
            .world_mut()
            .run_system_once(move |mut api: MingleClient| (f.take().expect("runs once"))(&mut api))
            .expect("MingleClient is always available with the plugin")
    }

    pub fn send_signal(&mut self, to: PeerId, payload: &[u8]) {
        let payload = payload.to_vec();
        self.with_api(move |api| api.send_signal(to, payload))
            .expect("connected");
    }

    pub fn request_refresh(&mut self) {
        self.with_api(|api| api.request_refresh())
            .expect("connected");
    }

    pub fn report(&mut self, peer: PeerId, outcome: ConnectionOutcome) {
        self.with_api(move |api| api.report_connection(peer, outcome))
            .expect("connected");
    }
}

/// A server and its clients, stepped together.
pub struct Harness {
    pub server: App,
    pub clients: Vec<Client>,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_config(MingleServerConfig::default())
    }

    pub fn with_config(config: MingleServerConfig) -> Self {
        Harness {
            server: server_app(config, None),
            clients: Vec::new(),
        }
    }

    /// A server handing out TURN credentials made with `secret`.
    pub fn with_turn_secret(config: MingleServerConfig, secret: &str) -> Self {
        let secret = TurnSecret::new(secret).expect("a non-empty TURN secret");
        Harness {
            server: app_around(loopback_plugin(config).with_turn_secret(secret)),
            clients: Vec::new(),
        }
    }

    /// A server that accepts only tokens signed with `key`.
    pub fn secure(config: MingleServerConfig, key: [u8; 32]) -> Self {
        Harness {
            server: server_app(config, Some(key)),
            clients: Vec::new(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.world().resource::<ServerAddress>().0
    }

    pub fn server_stats(&self) -> ServerStats {
        self.server.world().resource::<ServerStats>().clone()
    }

    /// Connects a client in realm 1, space 0, at `pos`; returns its index once welcomed.
    pub fn connect(&mut self, id: u64, pos: Vec3) -> usize {
        self.connect_in(id, Realm(1), SpaceId(0), pos)
    }

    /// Connects a client and steps until the server has welcomed it and holds its position.
    pub fn connect_in(&mut self, id: u64, realm: Realm, space: SpaceId, pos: Vec3) -> usize {
        let server = MingleServer::Unsecure {
            server: self.addr(),
            id: PeerId(id),
            realm,
        };
        self.try_connect(server, space, pos, |_| {})
            .unwrap_or_else(|why| panic!("client {id} was not welcomed: {why}"))
    }

    /// Connects a client whose app `customize` extends first (more plugins, systems).
    pub fn connect_customized(
        &mut self,
        id: u64,
        pos: Vec3,
        customize: impl FnOnce(&mut App),
    ) -> usize {
        let server = MingleServer::Unsecure {
            server: self.addr(),
            id: PeerId(id),
            realm: Realm(1),
        };
        self.try_connect(server, SpaceId(0), pos, customize)
            .unwrap_or_else(|why| panic!("client {id} was not welcomed: {why}"))
    }

    /// Connects with a connect token; `Err` says why the client gave up.
    pub fn connect_with_token(&mut self, token: &str, pos: Vec3) -> Result<usize, String> {
        self.try_connect(
            MingleServer::Token(token.to_owned()),
            SpaceId(0),
            pos,
            |_| {},
        )
    }

    fn try_connect(
        &mut self,
        server: MingleServer,
        space: SpaceId,
        pos: Vec3,
        customize: impl FnOnce(&mut App),
    ) -> Result<usize, String> {
        let id = match &server {
            MingleServer::Unsecure { id, .. } => *id,
            MingleServer::Token(_) => PeerId(0), // from the welcome
        };
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .add_plugins(
                MingleClientPlugin::new(MingleClientConfig {
                    // Send every moved frame: the tests step frames faster than any real rate.
                    position_hz: 1.0e9,
                    ..MingleClientConfig::default()
                })
                .connect_to(server),
            )
            .init_resource::<Recorder>()
            .add_systems(Update, record);
        customize(&mut app);
        app.world_mut()
            .spawn((MingleLocal { space }, Transform::from_translation(pos)));
        self.clients.push(Client { id, app });
        let index = self.clients.len() - 1;
        // Real time bounds the handshake (netcode's own timeouts are in seconds).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            self.step();
            let client = &self.clients[index];
            if client.welcomed() {
                let you = client.app.world().resource::<MingleWelcome>().you;
                self.clients[index].id = you;
                // Two more rounds: the first position reaches the server and is ticked.
                self.steps(2);
                return Ok(index);
            }
            match client.app.world().resource::<MingleConnectionState>() {
                MingleConnectionState::Reconnecting { reason, .. } => {
                    let why = format!("{reason:?}");
                    self.clients.remove(index);
                    return Err(why);
                }
                MingleConnectionState::Failed(err) => {
                    let why = err.to_string();
                    self.clients.remove(index);
                    return Err(why);
                }
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.clients.remove(index);
        Err("no welcome within 10 s".to_owned())
    }

    /// One round: clients send, the server receives, ticks once and sends, clients receive.
    pub fn step(&mut self) {
        for c in &mut self.clients {
            c.app.update();
        }
        self.server.update();
        for c in &mut self.clients {
            c.app.update();
        }
    }

    pub fn steps(&mut self, n: usize) {
        for _ in 0..n {
            self.step();
        }
    }

    /// Moves a client's player and steps until the server has ticked it.
    pub fn move_to(&mut self, index: usize, pos: Vec3) {
        self.set_transform(index, pos);
        self.steps(3);
    }

    pub fn set_transform(&mut self, index: usize, pos: Vec3) {
        let world = self.clients[index].app.world_mut();
        let mut q = world.query_filtered::<&mut Transform, With<MingleLocal>>();
        q.single_mut(world).expect("one MingleLocal").translation = pos;
    }

    pub fn set_space(&mut self, index: usize, space: SpaceId) {
        let world = self.clients[index].app.world_mut();
        let mut q = world.query::<&mut MingleLocal>();
        q.single_mut(world).expect("one MingleLocal").space = space;
        self.steps(3);
    }

    /// Disconnects a client cleanly and drops its app; steps until the server noticed.
    pub fn disconnect(&mut self, index: usize) -> Client {
        let mut client = self.clients.remove(index);
        client.with_api(|api| api.disconnect());
        client.app.update();
        self.steps(3);
        client
    }

    /// Adds a client app with the plugin but no connection (a game at its login screen);
    /// connect it with `with_api(|api| api.connect(..))`.
    pub fn add_unconnected(&mut self, pos: Vec3) -> usize {
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .add_plugins(MingleClientPlugin::new(MingleClientConfig {
                position_hz: 1.0e9,
                ..MingleClientConfig::default()
            }))
            .init_resource::<Recorder>()
            .add_systems(Update, record);
        app.world_mut()
            .spawn((MingleLocal::default(), Transform::from_translation(pos)));
        self.clients.push(Client { id: PeerId(0), app });
        self.clients.len() - 1
    }

    /// Stops the server as `mingle-server` does on a signal (every client is told), and
    /// starts a new one on the same address with `config`.
    pub fn restart_server(&mut self, config: MingleServerConfig) {
        let addr = self.addr();
        self.server.world_mut().write_message(AppExit::Success);
        self.server.update();
        let old = std::mem::replace(&mut self.server, App::new());
        drop(old); // closes the socket
        let socket = std::net::UdpSocket::bind(addr).expect("the old address is free again");
        self.server = app_around(MingleServerPlugin::with_socket(config, socket));
    }

    /// The client's connection state.
    pub fn state(&self, index: usize) -> MingleConnectionState {
        self.clients[index]
            .app
            .world()
            .resource::<MingleConnectionState>()
            .clone()
    }

    pub fn client(&self, index: usize) -> &Client {
        &self.clients[index]
    }

    pub fn client_mut(&mut self, index: usize) -> &mut Client {
        &mut self.clients[index]
    }
}

pub fn ids(raw: &[u64]) -> Vec<PeerId> {
    raw.iter().copied().map(PeerId).collect()
}

impl Harness {
    /// With clients 1 and 2 introduced as the first two, checks the pair is intact and that a
    /// newcomer (id 3) walking up to them is introduced to both: the server still serves.
    pub fn assert_still_serving(&mut self) {
        assert_eq!(
            self.client(0).nearby(),
            ids(&[2]),
            "the existing pair is intact"
        );
        let c = self.connect(3, Vec3::new(0.0, 5.0, 0.0));
        self.steps(3);
        assert_eq!(self.client(c).nearby(), ids(&[1, 2]), "introductions go on");
    }

    /// Steps everyone in real time (ICE, DTLS and audio run on it) until `done`, at most
    /// `limit`; returns whether `done` came true.
    pub fn step_until(&mut self, limit: Duration, mut done: impl FnMut(&Harness) -> bool) -> bool {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            self.step();
            if done(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }
}

/// GET /metrics over a plain TCP connection; panics unless it answers 200 within 5 s.
pub fn scrape(addr: SocketAddr) -> String {
    use std::io::{Read, Write};
    for _ in 0..50 {
        if let Ok(mut stream) = std::net::TcpStream::connect(addr) {
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            stream
                .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut body = String::new();
            stream.read_to_string(&mut body).unwrap();
            assert!(body.starts_with("HTTP/1.1 200"), "a 200 answer: {body:.80}");
            return body;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the metrics endpoint at {addr} never answered");
}
