//! A client below the plugin: renetcode + renet by hand over its own UDP socket, so a test can
//! send any bytes on any channel, or a raw (crafted) renet packet inside a valid netcode payload.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

use mingle::protocol::{
    Channel, PROTOCOL_ID, Realm, ServerToClient, connection_config, decode_server,
};
use renet::RenetClient;
use renetcode::{ClientAuthentication, NetcodeClient};

pub struct RawClient {
    socket: UdpSocket,
    server: SocketAddr,
    netcode: NetcodeClient,
    pub renet: RenetClient,
    buf: Vec<u8>,
    last: Instant,
}

impl RawClient {
    pub fn new(server: SocketAddr, id: u64, realm: Realm) -> Self {
        Self::with_auth(
            server,
            ClientAuthentication::Unsecure {
                protocol_id: PROTOCOL_ID,
                client_id: id,
                server_addr: server,
                user_data: Some(realm.to_user_data()),
            },
        )
    }

    /// An unsecure client with `user_data` of its own (a realm and initial groups, say).
    pub fn with_user_data(server: SocketAddr, id: u64, user_data: [u8; 256]) -> Self {
        Self::with_auth(
            server,
            ClientAuthentication::Unsecure {
                protocol_id: PROTOCOL_ID,
                client_id: id,
                server_addr: server,
                user_data: Some(user_data),
            },
        )
    }

    /// A client holding a signed connect token (secure mode).
    pub fn with_token(server: SocketAddr, token: renetcode::ConnectToken) -> Self {
        Self::with_auth(
            server,
            ClientAuthentication::Secure {
                connect_token: token,
            },
        )
    }

    fn with_auth(server: SocketAddr, auth: ClientAuthentication) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_nonblocking(true).unwrap();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap();
        let netcode = NetcodeClient::new(now, auth).unwrap();
        RawClient {
            socket,
            server,
            netcode,
            renet: RenetClient::new(connection_config()),
            buf: vec![0; 1500],
            last: Instant::now(),
        }
    }

    /// Reads the socket, advances netcode and renet, writes renet's packets.
    pub fn pump(&mut self) {
        let dt = self.last.elapsed();
        self.last = Instant::now();
        self.renet.update(dt);
        if self.netcode.is_connected() {
            self.renet.set_connected();
        }
        while let Ok((len, _)) = self.socket.recv_from(&mut self.buf) {
            if let Some(payload) = self.netcode.process_packet(&mut self.buf[..len]) {
                self.renet.process_packet(payload);
            }
        }
        if let Some((packet, addr)) = self.netcode.update(dt) {
            let _ = self.socket.send_to(packet, addr);
        }
        if self.netcode.is_connected() {
            for packet in self.renet.get_packets_to_send() {
                if let Ok((addr, payload)) = self.netcode.generate_payload_packet(&packet) {
                    let _ = self.socket.send_to(payload, addr);
                }
            }
        }
    }

    pub fn is_connected(&self) -> bool {
        self.netcode.is_connected()
    }

    pub fn is_disconnected(&self) -> bool {
        self.netcode.is_disconnected()
    }

    pub fn disconnect_reason(&self) -> Option<renetcode::DisconnectReason> {
        self.netcode.disconnect_reason()
    }

    /// Queues arbitrary bytes as one message on `channel`.
    pub fn send(&mut self, channel: Channel, bytes: Vec<u8>) {
        self.renet.send_message(channel, bytes);
    }

    /// Sends `payload` as a whole renet packet, bypassing renet's own packet writer.
    pub fn send_raw_packet(&mut self, payload: &[u8]) {
        let (addr, packet) = self.netcode.generate_payload_packet(payload).unwrap();
        self.socket.send_to(packet, addr).unwrap();
    }

    /// Sends `bytes` as one UDP datagram to the server, from this client's address.
    pub fn send_datagram(&self, bytes: &[u8]) {
        self.socket.send_to(bytes, self.server).unwrap();
    }

    /// A real encrypted netcode payload packet carrying `payload` (for captures and replays).
    pub fn payload_packet(&mut self, payload: &[u8]) -> Vec<u8> {
        self.netcode
            .generate_payload_packet(payload)
            .unwrap()
            .1
            .to_vec()
    }

    /// Says goodbye.
    pub fn disconnect(&mut self) {
        if let Ok((addr, packet)) = self.netcode.disconnect() {
            let _ = self.socket.send_to(packet, addr);
        }
    }

    /// Every server message received so far, decoded.
    pub fn drain(&mut self) -> Vec<ServerToClient> {
        let mut out = Vec::new();
        for channel in [Channel::Control, Channel::Signal] {
            while let Some(bytes) = self.renet.receive_message(channel) {
                out.push(decode_server(&bytes).expect("the server sends valid messages"));
            }
        }
        out
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }
}

/// Runs `step` until it returns true, for at most `limit` (real time: netcode runs on it).
pub fn until(limit: Duration, mut step: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if step() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}
