//! Real WebRTC through mingle (feature `webrtc`): two clients are introduced, signal through
//! the relay, open a data channel over 127.0.0.1 host candidates, exchange bytes, and the
//! channel closes when one walks away. Both report the connection to the server.

mod common;

use std::time::Duration;

use bevy::prelude::*;
use common::Harness;
use mingle::client::{LinkClosed, LinkData, LinkOpened, MingleWebRtcPlugin, WebRtcLinks};
use mingle::protocol::PeerId;

#[derive(Debug, Default, Resource)]
struct Links {
    opened: Vec<PeerId>,
    closed: Vec<PeerId>,
    data: Vec<(PeerId, Vec<u8>)>,
}

fn record_links(
    mut rec: ResMut<Links>,
    mut opened: MessageReader<LinkOpened>,
    mut closed: MessageReader<LinkClosed>,
    mut data: MessageReader<LinkData>,
) {
    rec.opened.extend(opened.read().map(|m| m.0));
    rec.closed.extend(closed.read().map(|m| m.0));
    rec.data
        .extend(data.read().map(|m| (m.from, m.data.clone())));
}

fn with_webrtc(app: &mut App) {
    app.add_plugins(MingleWebRtcPlugin::default())
        .init_resource::<Links>()
        .add_systems(Update, record_links);
}

fn links(h: &Harness, i: usize) -> &Links {
    h.client(i).app.world().resource::<Links>()
}

#[test]
fn introduced_clients_connect_talk_and_hang_up() {
    let mut h = Harness::new();
    let a = h.connect_customized(1, Vec3::ZERO, with_webrtc);
    let b = h.connect_customized(2, Vec3::new(5.0, 0.0, 0.0), with_webrtc);

    let open = h.step_until(Duration::from_secs(20), |h| {
        links(h, a).opened == [PeerId(2)] && links(h, b).opened == [PeerId(1)]
    });
    assert!(open, "the data channel opened on both sides");

    for (from, to) in [(a, PeerId(2)), (b, PeerId(1))] {
        let msg = format!("opus frame from {}", h.client(from).id.0).into_bytes();
        let sent = h
            .client_mut(from)
            .app
            .world_mut()
            .resource_mut::<WebRtcLinks>()
            .send(to, &msg);
        assert!(sent, "the open link takes bytes");
    }
    let delivered = h.step_until(Duration::from_secs(10), |h| {
        !links(h, a).data.is_empty() && !links(h, b).data.is_empty()
    });
    assert!(delivered, "each side received the other's bytes");
    assert_eq!(
        links(&h, a).data,
        vec![(PeerId(2), b"opus frame from 2".to_vec())]
    );
    assert_eq!(
        links(&h, b).data,
        vec![(PeerId(1), b"opus frame from 1".to_vec())]
    );

    h.move_to(b, Vec3::new(100.0, 0.0, 0.0));
    let closed = h.step_until(Duration::from_secs(10), |h| {
        links(h, a).closed == [PeerId(2)] && links(h, b).closed == [PeerId(1)]
    });
    assert!(closed, "the link closed on both sides when B walked away");
    let world = h.client(a).app.world();
    assert_eq!(world.resource::<WebRtcLinks>().open_links().count(), 0);

    let stats = h.server_stats();
    assert_eq!(
        stats.reports_connected, 2,
        "one successful report from each side"
    );
    assert_eq!(stats.reports_failed + stats.reports_timed_out, 0);
    assert!(
        stats.signals_relayed >= 2,
        "offer and answer went through mingle"
    );
}
