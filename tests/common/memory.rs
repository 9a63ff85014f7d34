//! The in-memory harness: the same server and client apps as [`Harness`](super::Harness), with
//! renet packets carried by `mingle::memory::exchange` instead of UDP. No socket, no netcode,
//! no wall clock (every app's time advances by a fixed step per update), no sleep: a run gives
//! the same messages every time. For the semantic suites; transport, hostile input, auth and
//! shutdown stay on real UDP.

use std::time::Duration;

use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use mingle::client::{
    MemoryLink, MingleClientConfig, MingleClientPlugin, MingleLocal, MingleWelcome,
};
use mingle::protocol::{PeerId, Realm, SpaceId};
use mingle::server::{MingleServerConfig, MingleServerPlugin, ServerStats};

use super::{Client, Recorder, app_around, record};

/// Rounds a connect may take before the harness gives up (it takes two).
const CONNECT_ROUNDS: usize = 20;

/// A server and its clients in one process, stepped together, exchanging packets in memory.
pub struct MemoryHarness {
    pub server: App,
    pub clients: Vec<Client>,
    /// Each client update's time step: half the server's, as a round updates clients twice.
    client_step: Duration,
}

impl MemoryHarness {
    pub fn new() -> Self {
        Self::with_config(MingleServerConfig::default())
    }

    pub fn with_config(config: MingleServerConfig) -> Self {
        let client_step = Duration::from_secs_f64(0.5 / config.tick_hz);
        MemoryHarness {
            server: app_around(MingleServerPlugin::in_memory(config)),
            clients: Vec::new(),
            client_step,
        }
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
        let mut app = App::new();
        app.add_plugins(MinimalPlugins)
            .insert_resource(TimeUpdateStrategy::ManualDuration(self.client_step))
            .add_plugins(MingleClientPlugin::new(MingleClientConfig {
                // Send every moved frame: the tests step frames faster than any real rate.
                position_hz: 1.0e9,
                ..MingleClientConfig::default()
            }))
            .init_resource::<Recorder>()
            .add_systems(Update, record);
        app.world_mut()
            .spawn((MingleLocal { space }, Transform::from_translation(pos)));
        MemoryLink::connect(app.world_mut(), PeerId(id), realm);
        self.clients.push(Client {
            id: PeerId(id),
            app,
        });
        let index = self.clients.len() - 1;
        for _ in 0..CONNECT_ROUNDS {
            self.step();
            if self.clients[index].welcomed() {
                let you = self.clients[index]
                    .app
                    .world()
                    .resource::<MingleWelcome>()
                    .you;
                assert_eq!(you, PeerId(id), "welcomed under its own id");
                // Two more rounds: the first position reaches the server and is ticked.
                self.steps(2);
                return index;
            }
        }
        panic!("client {id} was not welcomed within {CONNECT_ROUNDS} rounds");
    }

    /// Carries every packet waiting in a mailbox to its addressee.
    fn exchange(&mut self) {
        mingle::memory::exchange(
            self.server.world_mut(),
            self.clients.iter_mut().map(|c| c.app.world_mut()),
        );
    }

    /// One round: clients send, the server receives, ticks once and sends, clients receive.
    pub fn step(&mut self) {
        for c in &mut self.clients {
            c.app.update();
        }
        self.exchange();
        self.server.update();
        self.exchange();
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
        mingle::memory::exchange(self.server.world_mut(), [client.app.world_mut()]);
        self.steps(3);
        client
    }

    pub fn client(&self, index: usize) -> &Client {
        &self.clients[index]
    }

    pub fn client_mut(&mut self, index: usize) -> &mut Client {
        &mut self.clients[index]
    }
}
