//! Regression: after a quick reconnect with the same id, the new connection was sometimes sent
//! `left` for peers of the old connection, which it never held. A disconnect's departures are
//! computed at the next proximity tick; when the same id connects again before that tick, they
//! must reach the old connection's peers only, never the new connection.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bevy::time::TimeUpdateStrategy;
use common::Harness;
use common::raw::{RawClient, until};
use mingle::protocol::{
    Channel, ClientToServer, PeerId, Realm, ServerToClient, SpaceId, encode_client,
};

/// What one connection was told, checked message by message.
#[derive(Default)]
struct View {
    held: BTreeSet<PeerId>,
    welcomed: bool,
}

impl View {
    /// Applies `msgs` as the client plugin does (left, then entered) and panics on any message
    /// about a peer this connection was not told of.
    fn apply(&mut self, who: &str, msgs: Vec<ServerToClient>) {
        for msg in msgs {
            match msg {
                ServerToClient::Welcome { .. } => self.welcomed = true,
                ServerToClient::PeersChanged { entered, left } => {
                    for (p, _) in left {
                        assert!(
                            self.held.remove(&p),
                            "{who} was told {p} left, but never held it"
                        );
                    }
                    for (p, _) in entered {
                        assert!(self.held.insert(p), "{who} was told {p} entered twice");
                    }
                }
                ServerToClient::PeerSnapshot { peers } => self.held = peers.into_iter().collect(),
                _ => {}
            }
        }
    }
}

fn stand(c: &mut RawClient, x: f32) {
    c.send(
        Channel::Position,
        encode_client(&ClientToServer::Position {
            space: SpaceId(0),
            position: [x, 0.0, 0.0],
        }),
    );
}

#[test]
fn departures_of_an_old_connection_never_reach_a_new_one() {
    let mut h = Harness::new();
    // Four frames per proximity tick (20 Hz): a disconnect and the reconnect's handshake fit
    // between two ticks, as they do on a loaded server.
    h.server
        .insert_resource(TimeUpdateStrategy::ManualDuration(Duration::from_millis(
            13,
        )));
    let mut crowd: Vec<(RawClient, View)> = (0..20)
        .map(|k| (RawClient::new(h.addr(), 100 + k, Realm(1)), View::default()))
        .collect();
    let all_in = until(Duration::from_secs(10), || {
        for (c, _) in &mut crowd {
            c.pump();
        }
        h.step();
        crowd.iter().all(|(c, _)| c.is_connected())
    });
    assert!(all_in, "the crowd connects");
    for (k, (c, _)) in crowd.iter_mut().enumerate() {
        stand(c, k as f32 * 0.5);
    }

    const ID: u64 = 7;
    const ROUNDS: usize = 60;
    let mut current: Option<(RawClient, View)> = None;
    let mut lefts_seen_by_new = 0;
    for round in 0..ROUNDS {
        // The old connection says goodbye, and the same id dials again at once.
        if let Some((mut old, _)) = current.take() {
            old.disconnect();
        }
        let mut fresh = RawClient::new(h.addr(), ID, Realm(1));
        let mut view = View::default();
        let who = format!("connection {round} of id {ID}");
        let ok = until(Duration::from_secs(5), || {
            fresh.pump();
            h.step();
            for (c, v) in &mut crowd {
                c.pump();
                v.apply("a crowd member", c.drain());
            }
            fresh.pump();
            let msgs = fresh.drain();
            lefts_seen_by_new += msgs
                .iter()
                .filter(
                    |m| matches!(m, ServerToClient::PeersChanged { left, .. } if !left.is_empty()),
                )
                .count();
            view.apply(&who, msgs);
            if fresh.is_connected() && view.welcomed && view.held.is_empty() {
                stand(&mut fresh, 1.0);
            }
            view.welcomed && !view.held.is_empty()
        });
        assert!(ok, "{who} is welcomed and introduced to the crowd");
        current = Some((fresh, view));
    }
    // Let the last departures settle, still checking every message.
    for _ in 0..20 {
        h.step();
        for (c, v) in &mut crowd {
            c.pump();
            v.apply("a crowd member", c.drain());
        }
    }
    assert_eq!(lefts_seen_by_new, 0, "no new connection heard a departure");
}
