//! Voice rules through the real path (real UDP, real renet, the server plugin): initial groups
//! from the connect token's user data, a client blocking a peer for its session, a client
//! setting its own voice range, the game's components, and the cause of every arrival and
//! departure in the `PeersChanged` a client receives.

mod common;

use std::time::Duration;

use common::raw::{RawClient, until};
use mingle::protocol::{
    ClientToServer, PeerId, Realm, RejectReason, ServerToClient, SpaceId, encode_client,
    token_user_data,
};
use mingle::proximity::{ArrivalCause, DepartureCause, GroupId};
use mingle::server::{
    MingleServerConfig, PeerDirectory, ServerAddress, VoiceBlocks, VoiceGroups, VoiceRange,
};

const REALM: Realm = Realm(1);

struct World {
    server: bevy::app::App,
    clients: Vec<RawClient>,
    /// What each client heard so far: (peer, Some(arrival) / None, Some(departure) / None).
    heard: Vec<Vec<ServerToClient>>,
}

impl World {
    fn new() -> Self {
        World {
            server: common::server_app(MingleServerConfig::default(), None),
            clients: Vec::new(),
            heard: Vec::new(),
        }
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.server.world().resource::<ServerAddress>().0
    }

    /// Connects client `id` with `groups` in its user data, standing at `pos`.
    fn connect(&mut self, id: u64, groups: &[GroupId], pos: [f32; 3]) -> usize {
        let mut c = RawClient::with_user_data(self.addr(), id, token_user_data(REALM, groups));
        let server = &mut self.server;
        let connected = until(Duration::from_secs(5), || {
            c.pump();
            server.update();
            c.is_connected()
        });
        assert!(connected, "client {id} connects");
        self.clients.push(c);
        self.heard.push(Vec::new());
        let k = self.clients.len() - 1;
        self.move_to(k, pos);
        k
    }

    fn send(&mut self, k: usize, msg: ClientToServer) {
        let channel = msg.channel();
        self.clients[k].send(channel, encode_client(&msg));
    }

    fn move_to(&mut self, k: usize, pos: [f32; 3]) {
        self.send(
            k,
            ClientToServer::Position {
                space: SpaceId(0),
                position: pos,
            },
        );
        self.steps(4);
    }

    fn steps(&mut self, n: usize) {
        for _ in 0..n {
            for c in &mut self.clients {
                c.pump();
            }
            self.server.update();
            for (c, heard) in self.clients.iter_mut().zip(&mut self.heard) {
                c.pump();
                heard.extend(c.drain());
            }
        }
    }

    /// Every arrival client `k` was told of, in order.
    fn arrivals(&self, k: usize) -> Vec<(PeerId, ArrivalCause)> {
        self.heard[k]
            .iter()
            .flat_map(|m| match m {
                ServerToClient::PeersChanged { entered, .. } => entered.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    fn departures(&self, k: usize) -> Vec<(PeerId, DepartureCause)> {
        self.heard[k]
            .iter()
            .flat_map(|m| match m {
                ServerToClient::PeersChanged { left, .. } => left.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    fn rejections(&self, k: usize) -> Vec<RejectReason> {
        self.heard[k]
            .iter()
            .filter_map(|m| match m {
                ServerToClient::Rejected { reason } => Some(*reason),
                _ => None,
            })
            .collect()
    }

    fn entity(&self, id: u64) -> bevy::prelude::Entity {
        self.server
            .world()
            .resource::<PeerDirectory>()
            .get(PeerId(id))
            .expect("connected")
    }
}

#[test]
fn token_groups_introduce_a_party_across_the_world_and_say_so() {
    let mut w = World::new();
    let party = [GroupId(42)];
    let a = w.connect(1, &party, [0.0, 0.0, 0.0]);
    let b = w.connect(2, &party, [5000.0, 0.0, 0.0]);
    let c = w.connect(3, &[], [5.0, 0.0, 0.0]);
    w.steps(4);
    assert_eq!(w.arrivals(b), vec![(PeerId(1), ArrivalCause::Group)]);
    assert_eq!(
        w.arrivals(a),
        vec![
            (PeerId(2), ArrivalCause::Group),
            (PeerId(3), ArrivalCause::Proximity)
        ]
    );
    assert_eq!(w.arrivals(c), vec![(PeerId(1), ArrivalCause::Proximity)]);
}

#[test]
fn a_client_blocks_a_peer_for_its_session_and_signals_stop_at_once() {
    let mut w = World::new();
    let a = w.connect(1, &[], [0.0, 0.0, 0.0]);
    let b = w.connect(2, &[], [5.0, 0.0, 0.0]);
    assert_eq!(w.arrivals(b), vec![(PeerId(1), ArrivalCause::Proximity)]);
    w.send(
        a,
        ClientToServer::Block {
            peer: PeerId(2),
            blocked: true,
        },
    );
    w.steps(4);
    assert_eq!(w.departures(b), vec![(PeerId(1), DepartureCause::Blocked)]);
    assert_eq!(w.departures(a), vec![(PeerId(2), DepartureCause::Blocked)]);
    // The relay refuses by the block itself, not only because the pair is gone.
    w.send(
        b,
        ClientToServer::Signal {
            to: PeerId(1),
            payload: b"offer".to_vec(),
        },
    );
    w.steps(3);
    assert_eq!(
        w.rejections(b),
        vec![RejectReason::Blocked { peer: PeerId(1) }]
    );
    // Moving about changes nothing; unblocking introduces them again.
    w.move_to(b, [3.0, 0.0, 0.0]);
    assert_eq!(w.arrivals(b).len(), 1);
    w.send(
        a,
        ClientToServer::Block {
            peer: PeerId(2),
            blocked: false,
        },
    );
    w.steps(4);
    assert_eq!(w.arrivals(b).len(), 2, "unblocked: introduced again");
}

#[test]
fn a_client_shouts_within_the_bounds_and_is_refused_beyond() {
    let mut w = World::new();
    let a = w.connect(1, &[], [0.0, 0.0, 0.0]);
    let b = w.connect(2, &[], [35.0, 0.0, 0.0]);
    assert!(w.arrivals(b).is_empty(), "35 units: out of plain range");
    w.send(a, ClientToServer::SetVoiceRange { multiplier: 2.0 });
    w.steps(4);
    assert_eq!(w.arrivals(b), vec![(PeerId(1), ArrivalCause::Proximity)]);
    w.send(a, ClientToServer::SetVoiceRange { multiplier: 3.0 });
    w.steps(3);
    assert_eq!(w.rejections(a), vec![RejectReason::VoiceRangeRefused]);
    w.send(a, ClientToServer::SetVoiceRange { multiplier: 0.5 });
    w.steps(4);
    assert_eq!(w.departures(b), vec![(PeerId(1), DepartureCause::Range)]);
}

#[test]
fn the_game_sets_rules_with_components_and_a_group_leaves() {
    let mut w = World::new();
    let a = w.connect(1, &[], [0.0, 0.0, 0.0]);
    let b = w.connect(2, &[], [900.0, 0.0, 0.0]);
    let c = w.connect(3, &[], [5.0, 0.0, 0.0]);
    let (ea, eb, ec) = (w.entity(1), w.entity(2), w.entity(3));
    w.server
        .world_mut()
        .entity_mut(ea)
        .insert(VoiceGroups(vec![GroupId(7)]));
    w.server
        .world_mut()
        .entity_mut(eb)
        .insert(VoiceGroups(vec![GroupId(7)]));
    w.server
        .world_mut()
        .entity_mut(ec)
        .insert(VoiceBlocks(vec![PeerId(1)]));
    w.steps(4);
    assert!(w.arrivals(b).contains(&(PeerId(1), ArrivalCause::Group)));
    assert_eq!(w.departures(c), vec![(PeerId(1), DepartureCause::Blocked)]);
    w.server
        .world_mut()
        .entity_mut(eb)
        .remove::<VoiceGroups>()
        .insert(VoiceRange(2.0));
    w.steps(4);
    assert_eq!(
        w.departures(b),
        vec![(PeerId(1), DepartureCause::GroupLeft)]
    );
    assert!(
        w.departures(a)
            .contains(&(PeerId(2), DepartureCause::GroupLeft))
    );
}

/// The client plugin: `MingleClient::block` and `set_voice_range` reach the server, and
/// `PeerCauses` tells the game why each peer came and went.
#[test]
fn the_client_plugin_blocks_shouts_and_knows_why() {
    use bevy::math::Vec3;
    use mingle::client::PeerCauses;

    let mut h = common::Harness::new();
    let a = h.connect(1, Vec3::ZERO);
    let b = h.connect(2, Vec3::new(35.0, 0.0, 0.0));
    h.steps(3);
    assert!(h.client(b).nearby().is_empty());
    h.client_mut(a)
        .with_api(|api| api.set_voice_range(2.0))
        .unwrap();
    assert!(
        h.step_until(Duration::from_secs(5), |h| h.client(b).nearby()
            == vec![PeerId(1)])
    );
    let causes =
        |h: &common::Harness, k: usize| h.client(k).app.world().resource::<PeerCauses>().clone();
    assert_eq!(
        causes(&h, b).arrival(PeerId(1)),
        Some(ArrivalCause::Proximity)
    );
    h.client_mut(b)
        .with_api(|api| api.block(PeerId(1), true))
        .unwrap();
    assert!(h.step_until(Duration::from_secs(5), |h| h.client(a).nearby().is_empty()));
    assert_eq!(
        causes(&h, a).departure(PeerId(2)),
        Some(DepartureCause::Blocked)
    );
    assert_eq!(causes(&h, a).arrival(PeerId(2)), None);
}

/// Secure mode: the backend signs the initial groups into the token; a client cannot pick them.
#[test]
fn signed_tokens_carry_the_party() {
    use bevy::math::Vec3;
    use mingle::auth::{TokenRequest, generate_token_with_groups, parse_key};
    use mingle::client::PeerCauses;

    let key = parse_key(&mingle::auth::generate_key()).unwrap();
    let mut h = common::Harness::secure(MingleServerConfig::default(), key);
    let token = |id: u64, server| {
        let req = TokenRequest {
            client_id: id,
            realm: REALM,
            server,
            expire_secs: 60,
            timeout_secs: 15,
        };
        generate_token_with_groups(&req, &[GroupId(3)], &key).unwrap()
    };
    let a = h
        .connect_with_token(&token(1, h.addr()), Vec3::ZERO)
        .unwrap();
    h.connect_with_token(&token(2, h.addr()), Vec3::new(3000.0, 0.0, 0.0))
        .unwrap();
    assert!(
        h.step_until(Duration::from_secs(5), |h| h.client(a).nearby()
            == vec![PeerId(2)])
    );
    let causes = h.client(a).app.world().resource::<PeerCauses>();
    assert_eq!(causes.arrival(PeerId(2)), Some(ArrivalCause::Group));
}
