//! STUN and TURN against a real coturn on 127.0.0.1 (feature `webrtc`; needs `turnserver`,
//! Debian package `coturn`). mingle hands both clients a TURN URL with credentials of their
//! own; each gathers a server-reflexive candidate by STUN Binding and a relayed one by TURN
//! allocation; both offer only the relayed candidate (`relay_only`), so the data channel can
//! open only through coturn: allocation, permissions, channel bindings and the wrapping of
//! every datagram on the links' socket must all work.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use common::Harness;
use mingle::client::{LinkData, LinkOpened, MingleWebRtcPlugin, WebRtcConfig, WebRtcLinks};
use mingle::protocol::PeerId;
use mingle::server::MingleServerConfig;

const SECRET: &str = "loopback-secret";

/// coturn on 127.0.0.1, killed on drop.
struct Coturn {
    child: Child,
    port: u16,
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether a STUN Binding request to `addr` is answered within `limit`.
fn answers_stun(addr: SocketAddr, limit: Duration) -> bool {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // Binding request: type 0x0001, length 0, magic cookie, 12-byte transaction id.
    let mut req = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
    req.extend_from_slice(b"mingle-ready");
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 1500];
    while Instant::now() < deadline {
        let _ = socket.send_to(&req, addr);
        if let Ok((n, _)) = socket.recv_from(&mut buf)
            && n >= 20
            && buf[0] == 0x01
            && buf[1] == 0x01
        {
            return true;
        }
    }
    false
}

fn start_coturn() -> Coturn {
    let port = free_udp_port();
    // A relay range of its own, derived from the process id, so parallel runs rarely collide.
    let min = 50_000 + (std::process::id() % 500) as u16 * 20;
    let child = Command::new("turnserver")
        .args([
            "-n",
            "--no-cli",
            "--no-tls",
            "--no-dtls",
            "-L",
            "127.0.0.1",
            "--listening-port",
            &port.to_string(),
            "--min-port",
            &min.to_string(),
            "--max-port",
            &(min + 19).to_string(),
            "--use-auth-secret",
            &format!("--static-auth-secret={SECRET}"),
            "--realm=mingle.test",
            "--allow-loopback-peers",
            "--log-file=stdout",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("turnserver runs (install the Debian package `coturn`)");
    let coturn = Coturn { child, port };
    assert!(
        answers_stun(
            SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(5)
        ),
        "coturn answers STUN on 127.0.0.1:{port}"
    );
    coturn
}

#[derive(Debug, Default, Resource)]
struct Seen {
    opened: Vec<PeerId>,
    data: Vec<Vec<u8>>,
}

fn record(
    mut seen: ResMut<Seen>,
    mut o: MessageReader<LinkOpened>,
    mut d: MessageReader<LinkData>,
) {
    seen.opened.extend(o.read().map(|m| m.0));
    seen.data.extend(d.read().map(|m| m.data.clone()));
}

fn relay_only(app: &mut App) {
    app.add_plugins(MingleWebRtcPlugin {
        config: WebRtcConfig {
            relay_only: true,
            ..WebRtcConfig::default()
        },
    })
    .init_resource::<Seen>()
    .add_systems(Update, record);
}

fn links(h: &Harness, i: usize) -> &WebRtcLinks {
    h.client(i).app.world().resource::<WebRtcLinks>()
}

#[test]
fn stun_and_turn_through_a_real_coturn_on_loopback() {
    let coturn = start_coturn();
    let config = MingleServerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        ice_servers: vec![format!("turn:127.0.0.1:{}?transport=udp", coturn.port)],
        ..MingleServerConfig::default()
    };
    let mut h = Harness::with_turn_secret(config, SECRET);
    // Far apart first: both gather before they are introduced.
    let a = h.connect_customized(1, Vec3::ZERO, relay_only);
    let b = h.connect_customized(2, Vec3::new(500.0, 0.0, 0.0), relay_only);

    let kinds = |h: &Harness, i: usize| -> Vec<String> {
        links(h, i)
            .local_candidates()
            .iter()
            .map(|c| c.kind().to_string())
            .collect()
    };
    let gathered = h.step_until(Duration::from_secs(10), |h| {
        [a, b].iter().all(|&i| {
            let k = kinds(h, i);
            k.iter().any(|k| k == "srflx") && k.iter().any(|k| k == "relay")
        })
    });
    assert!(
        gathered,
        "both gathered srflx (STUN Binding) and relay (TURN allocation): {:?} / {:?}",
        kinds(&h, a),
        kinds(&h, b)
    );

    h.move_to(b, Vec3::new(5.0, 0.0, 0.0));
    let open = h.step_until(Duration::from_secs(15), |h| {
        [a, b]
            .iter()
            .all(|&i| !h.client(i).app.world().resource::<Seen>().opened.is_empty())
    });
    assert!(open, "the data channel opened through coturn");

    for (from, to) in [(a, PeerId(2)), (b, PeerId(1))] {
        let sent = h
            .client_mut(from)
            .app
            .world_mut()
            .resource_mut::<WebRtcLinks>()
            .send(to, b"through the relay");
        assert!(sent);
    }
    let delivered = h.step_until(Duration::from_secs(10), |h| {
        [a, b]
            .iter()
            .all(|&i| !h.client(i).app.world().resource::<Seen>().data.is_empty())
    });
    assert!(delivered, "bytes crossed the relay both ways");

    for (i, peer) in [(a, PeerId(2)), (b, PeerId(1))] {
        let pair = links(&h, i).selected_pair(peer).expect("a selected pair");
        assert_eq!(pair.local_kind, "relay", "{pair:?}");
        assert_eq!(pair.remote_kind, "relay", "{pair:?}");
        let counts = links(&h, i).relay_counts();
        assert!(counts.sent > 0 && counts.received > 0, "{counts:?}");
    }
    drop(coturn);
}
