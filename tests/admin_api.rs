//! The voice rules' admin HTTP API over real HTTP (TCP on 127.0.0.1, hyper on the server side,
//! a hand-written HTTP/1.1 client here) against a real server app with real renet clients:
//! groups joined and refused when full, persistent blocks, the voice range, the bearer secret.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bevy::app::App;
use common::raw::{RawClient, until};
use mingle::protocol::{ClientToServer, PeerId, Realm, ServerToClient, SpaceId, encode_client};
use mingle::proximity::{ArrivalCause, DepartureCause};
use mingle::server::{
    AdminError, MingleAdminPlugin, MingleServerConfig, ServerAddress, VoiceRulesConfig,
};
use serde_json::Value;

/// One HTTP/1.1 request on a fresh connection: (status, JSON body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).expect("admin API accepts");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let auth = auth.map_or(String::new(), |s| format!("Authorization: Bearer {s}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().expect("a status line");
    let json = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

struct Rig {
    server: App,
    admin: SocketAddr,
    clients: Vec<RawClient>,
    heard: Vec<Vec<ServerToClient>>,
}

impl Rig {
    fn new(secret: Option<&str>) -> Self {
        let config = MingleServerConfig {
            voice_rules: VoiceRulesConfig {
                max_group_size: 2,
                ..VoiceRulesConfig::default()
            },
            ..MingleServerConfig::default()
        };
        let mut server = common::server_app(config, None);
        let admin = MingleAdminPlugin::bind(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            secret.map(str::to_owned),
        )
        .expect("binds loopback");
        let addr = admin.local_addr();
        server.add_plugins(admin);
        Rig {
            server,
            admin: addr,
            clients: Vec::new(),
            heard: Vec::new(),
        }
    }

    fn connect(&mut self, id: u64, x: f32) {
        let addr = self.server.world().resource::<ServerAddress>().0;
        let mut c = RawClient::new(addr, id, Realm(1));
        let server = &mut self.server;
        assert!(until(Duration::from_secs(5), || {
            c.pump();
            server.update();
            c.is_connected()
        }));
        c.send(
            mingle::protocol::Channel::Position,
            encode_client(&ClientToServer::Position {
                space: SpaceId(0),
                position: [x, 0.0, 0.0],
            }),
        );
        self.clients.push(c);
        self.heard.push(Vec::new());
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

    /// A request, served while the server app runs (it answers from its own frame).
    fn call(&mut self, method: &str, path: &str, auth: Option<&str>, body: &str) -> (u16, Value) {
        let (addr, method, path, auth, body) = (
            self.admin,
            method.to_owned(),
            path.to_owned(),
            auth.map(str::to_owned),
            body.to_owned(),
        );
        let request =
            std::thread::spawn(move || http(addr, &method, &path, auth.as_deref(), &body));
        while !request.is_finished() {
            self.steps(1);
            std::thread::sleep(Duration::from_millis(1));
        }
        let answer = request.join().unwrap();
        self.steps(4); // the change takes effect at the next tick
        answer
    }

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
}

#[test]
fn groups_blocks_and_voice_range_over_http() {
    let mut rig = Rig::new(None);
    rig.connect(1, 0.0);
    rig.connect(2, 4000.0);
    rig.connect(3, 35.0);

    let (status, body) = rig.call("PUT", "/v1/peers/1/groups/9", None, "");
    assert_eq!((status, &body["joined"]), (200, &Value::Bool(true)));
    assert_eq!(rig.call("PUT", "/v1/peers/2/groups/9", None, "").0, 200);
    assert_eq!(rig.arrivals(1), vec![(PeerId(1), ArrivalCause::Group)]);
    let (status, body) = rig.call("PUT", "/v1/peers/3/groups/9", None, "");
    assert_eq!(status, 409, "the group holds 2: {body}");

    let (status, body) = rig.call("GET", "/v1/peers/1", None, "");
    assert_eq!(status, 200);
    assert_eq!(body["groups"], serde_json::json!([9]));
    assert_eq!(body["nearby"], serde_json::json!([2]));

    // A shout beyond the bounds is clamped to them (2): 35 units away is now heard.
    let (status, body) = rig.call(
        "PUT",
        "/v1/peers/3/voice-range",
        None,
        r#"{"multiplier": 9}"#,
    );
    assert_eq!((status, body["voice_range"].as_f64()), (200, Some(2.0)));
    assert_eq!(
        rig.arrivals(0),
        vec![
            (PeerId(2), ArrivalCause::Group),
            (PeerId(3), ArrivalCause::Proximity)
        ]
    );

    // A persistent block ends the pair; taking it back restores it.
    assert_eq!(rig.call("PUT", "/v1/blocks/2/1", None, "").0, 200);
    assert_eq!(
        rig.departures(1),
        vec![(PeerId(1), DepartureCause::Blocked)]
    );
    let (status, body) = rig.call("DELETE", "/v1/blocks/1/2", None, "");
    assert_eq!((status, &body["unblocked"]), (200, &Value::Bool(true)));
    assert_eq!(rig.arrivals(1).len(), 2);

    // Leaving the group ends the pair for that reason.
    assert_eq!(rig.call("DELETE", "/v1/peers/2/groups/9", None, "").0, 200);
    assert_eq!(
        rig.departures(1).last(),
        Some(&(PeerId(1), DepartureCause::GroupLeft))
    );

    assert_eq!(
        rig.call("GET", "/v1/peers/77", None, "").0,
        404,
        "not connected"
    );
    assert_eq!(rig.call("GET", "/v1/nothing", None, "").0, 404);
    assert_eq!(rig.call("PUT", "/v1/peers/x/groups/1", None, "").0, 400);
    assert_eq!(
        rig.call("PUT", "/v1/peers/3/voice-range", None, "{}").0,
        400
    );
}

#[test]
fn a_secret_guards_every_request() {
    let mut rig = Rig::new(Some("s3cret"));
    rig.connect(1, 0.0);
    assert_eq!(rig.call("GET", "/v1/peers/1", None, "").0, 401);
    assert_eq!(rig.call("GET", "/v1/peers/1", Some("wrong!"), "").0, 401);
    assert_eq!(rig.call("GET", "/v1/peers/1", Some("s3cret"), "").0, 200);
}

#[test]
fn off_loopback_without_a_secret_does_not_start() {
    let open = SocketAddr::from(([0, 0, 0, 0], 0));
    assert!(matches!(
        MingleAdminPlugin::bind(open, None),
        Err(AdminError::NoSecret(_))
    ));
}
