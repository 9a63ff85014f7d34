//! Structure-aware fuzzing of the server's whole receive path: netcode datagrams of every
//! type, sent from a connected client's own address, go through the netcode guard, renetcode,
//! the renet guard, the slice ledger and renet. Shared by `tests/fuzz_transport.rs` (short runs)
//! and `examples/fuzz_transport.rs` (millions of datagrams).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime};

use bevy_renet::RenetServer;
use mingle::protocol::{
    Channel, ClientToServer, PROTOCOL_ID, Realm, SpaceId, connection_config, encode_client,
};
use mingle::server::ServerTransport;
use mingle::server::renet_guard::slice_packet;
use renet::RenetClient;
use renetcode::{ClientAuthentication, NetcodeClient, ServerAuthentication};

/// xorshift64: deterministic, seedable, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// A renet packet as a client might send one: valid small messages, slices with every kind of
/// index and count, acks, garbage.
fn renet_packet(rng: &mut Rng) -> Vec<u8> {
    // Mostly our channels; now and then one we never configured.
    let channel = match rng.below(50) {
        0 => [3u8, 200][rng.below(2)],
        k => (k % 3) as u8,
    };
    match rng.below(100) {
        0..40 => {
            // SmallReliable (0) or SmallUnreliable (1), as renet writes them: type, sequence,
            // channel, message count (u16), then per message [id,] length, bytes. The type
            // follows the channel's kind, except now and then.
            let msg = encode_client(&ClientToServer::Position {
                space: SpaceId(rng.below(4) as u32),
                position: [rng.below(100) as f32, 0.0, 1.0],
            });
            let unreliable = (channel == 1) != (rng.below(50) == 0);
            let mut p = vec![u8::from(unreliable), rng.below(60) as u8, channel, 0, 1];
            if !unreliable {
                p.push(rng.below(60) as u8); // message id
            }
            p.push(msg.len() as u8);
            p.extend(msg);
            p
        }
        40..85 => {
            // Mostly consistent slices (the count follows from the message id), sometimes a
            // broken index or count, or the two-step attack (another count for a known id).
            let message_id = rng.next() % 64;
            let consistent = 1 + message_id % 55;
            let (index, num) = match rng.below(40) {
                0 => (consistent, consistent),
                1 => (rng.next() % 100, [56u64, 1_000_000, 2, 50][rng.below(4)]),
                _ => (rng.next() % consistent, consistent),
            };
            let reliable = (channel != 1) != (rng.below(50) == 0);
            let mut p = slice_packet(reliable, channel, index, num);
            p[10..18].copy_from_slice(&(message_id | (0b11 << 62)).to_be_bytes());
            if rng.below(40) == 0 {
                let cut = rng.below(p.len());
                p.truncate(cut);
            }
            p
        }
        85..97 => {
            // Ack: sequence, first range end and size, no further ranges.
            let end = rng.below(64) as u8;
            vec![
                4,
                rng.below(64) as u8,
                end,
                rng.below(usize::from(end) + 1) as u8,
                0,
            ]
        }
        97 => vec![5, rng.below(8) as u8],
        _ => {
            let len = rng.below(64);
            rng.bytes(len)
        }
    }
}

/// One datagram, from one of the families below; `seal` turns a renet packet into a real
/// encrypted netcode payload packet of the connected client.
pub fn datagram(
    rng: &mut Rng,
    captured: &mut Vec<Vec<u8>>,
    seal: &mut dyn FnMut(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    match rng.below(8) {
        // Random bytes of any length.
        0 => {
            let len = rng.below(1400);
            rng.bytes(len)
        }
        // Every prefix (type and sequence nibble) at lengths around each threshold.
        1 => {
            let len = [17, 18, 19, 24, 25, 26, 40, 1077, 1078, 1300][rng.below(10)];
            let mut d = rng.bytes(len);
            if let Some(first) = d.first_mut() {
                *first = rng.next() as u8;
            }
            d
        }
        // A real payload packet around a crafted or random renet packet.
        2 | 3 => {
            let d = seal(&renet_packet(rng));
            if captured.len() < 256 {
                captured.push(d.clone());
            } else {
                let k = rng.below(captured.len());
                captured[k] = d.clone();
            }
            d
        }
        // A replay of a captured packet.
        4 if !captured.is_empty() => captured[rng.below(captured.len())].clone(),
        // A captured packet with bits flipped, truncated or extended.
        5 | 6 if !captured.is_empty() => {
            let mut d = captured[rng.below(captured.len())].clone();
            match rng.below(3) {
                0 => {
                    for _ in 0..1 + rng.below(4) {
                        let at = rng.below(d.len());
                        d[at] ^= 1 << rng.below(8);
                    }
                }
                1 => d.truncate(rng.below(d.len() + 1)),
                _ => {
                    let extra = rng.below(40);
                    d.extend(rng.bytes(extra));
                }
            }
            d
        }
        // A connection request: netcode's header with a random or truncated token.
        _ => {
            let mut d = vec![0u8];
            d.extend_from_slice(b"NETCODE 1.02\0");
            d.extend_from_slice(&PROTOCOL_ID.to_le_bytes());
            d.extend_from_slice(&u64::MAX.to_le_bytes());
            let len = [24 + 1024, 24 + 1000, 10][rng.below(3)];
            d.extend(rng.bytes(len));
            d
        }
    }
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
}

/// A server transport and renet server in this process, and one client connected to it whose
/// address every fuzzed datagram comes from.
pub struct TransportFuzz {
    pub transport: ServerTransport,
    pub server: RenetServer,
    client_socket: UdpSocket,
    from: SocketAddr,
    client: NetcodeClient,
    /// netcode's clock on the server side, advanced with every receive pass.
    clock: Duration,
    next_id: u64,
    pub rng: Rng,
    captured: Vec<Vec<u8>>,
    /// Datagrams injected.
    pub sent: u64,
    /// Times the fuzzed client was dropped and had to connect again.
    pub reconnects: u64,
}

impl TransportFuzz {
    pub fn new(seed: u64) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let transport =
            ServerTransport::new(socket, addr, 16, ServerAuthentication::Unsecure).unwrap();
        let client_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        client_socket.set_nonblocking(true).unwrap();
        let mut fuzz = TransportFuzz {
            transport,
            server: RenetServer(renet::RenetServer::new(connection_config())),
            client: Self::dial(addr, 1, now()),
            clock: now(),
            from: client_socket.local_addr().unwrap(),
            client_socket,
            next_id: 2,
            rng: Rng(seed | 1),
            captured: Vec::new(),
            sent: 0,
            reconnects: 0,
        };
        fuzz.handshake();
        fuzz
    }

    fn server_addr(&self) -> SocketAddr {
        self.transport.local_addr().unwrap()
    }

    fn client_addr(&self) -> SocketAddr {
        self.from
    }

    /// A fresh client socket: netcode keeps a dropped address's handshake state a while.
    fn rebind(&mut self) {
        self.client_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        self.client_socket.set_nonblocking(true).unwrap();
        self.from = self.client_socket.local_addr().unwrap();
    }

    /// A client whose clock is the server's (the fuzz runs netcode's clock faster than real
    /// time; a token dated by the wall clock would look expired).
    fn dial(server: SocketAddr, id: u64, clock: Duration) -> NetcodeClient {
        NetcodeClient::new(
            clock,
            ClientAuthentication::Unsecure {
                protocol_id: PROTOCOL_ID,
                client_id: id,
                server_addr: server,
                user_data: Some(Realm(1).to_user_data()),
            },
        )
        .unwrap()
    }

    /// Runs the netcode handshake of `self.client`, its datagrams injected, the server's
    /// answers read from the client's real socket.
    fn handshake(&mut self) {
        let from = self.client_addr();
        let mut buf = [0u8; 1500];
        for _ in 0..20_000 {
            if self.client.is_connected() {
                return;
            }
            if let Some((packet, _)) = self.client.update(Duration::from_millis(1)) {
                let packet = packet.to_vec();
                self.transport.inject(from, &packet, &mut self.server);
            }
            self.transport
                .receive(Duration::from_millis(1), &mut self.server);
            self.clock += Duration::from_millis(1);
            while let Ok((len, _)) = self.client_socket.recv_from(&mut buf) {
                self.client.process_packet(&mut buf[..len]);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        panic!(
            "the fuzzed client could not connect: {:?}, {} connected",
            self.client.disconnect_reason(),
            self.transport.connected_clients()
        );
    }

    /// Sends `n` fuzzed datagrams from the client's address; reconnects it whenever the
    /// server dropped it.
    pub fn run(&mut self, n: u64) {
        let mut buf = [0u8; 1500];
        for k in 0..n {
            let client = &mut self.client;
            let mut seal = |renet: &[u8]| match client.generate_payload_packet(renet) {
                Ok((_, packet)) => packet.to_vec(),
                Err(_) => Vec::new(),
            };
            let d = datagram(&mut self.rng, &mut self.captured, &mut seal);
            let from = self.client_addr();
            self.transport.inject(from, &d, &mut self.server);
            self.sent += 1;
            if k % 64 == 63 {
                self.settle();
                while let Ok((len, _)) = self.client_socket.recv_from(&mut buf) {
                    self.client.process_packet(&mut buf[..len]);
                }
                if self.transport.client_at(self.client_addr()).is_none() {
                    // Dropped (a crafted packet): connect again under a new id.
                    self.reconnects += 1;
                    self.captured.clear();
                    self.rebind();
                    self.client = Self::dial(self.server_addr(), self.next_id, self.clock);
                    self.next_id += 1;
                    self.handshake();
                }
            }
        }
        self.settle();
    }

    /// Lets renet and the transport act on what arrived, and drains delivered messages.
    fn settle(&mut self) {
        self.server.update(Duration::from_millis(5));
        self.transport
            .receive(Duration::from_millis(5), &mut self.server);
        self.clock += Duration::from_millis(5);
        for id in self.server.clients_id() {
            for channel in Channel::ALL {
                while self.server.receive_message(id, channel).is_some() {}
            }
        }
        self.transport.send(&mut self.server);
    }

    /// Whether a brand-new client can still connect and get a message through.
    pub fn still_serving(&mut self) -> bool {
        let mut renet = RenetClient::new(connection_config());
        self.rebind();
        self.client = Self::dial(self.server_addr(), 999_999, self.clock);
        self.handshake();
        let from = self.client_addr();
        renet.set_connected();
        renet.send_message(Channel::Control, vec![1, 2, 3]);
        for packet in renet.get_packets_to_send() {
            let (_, sealed) = self.client.generate_payload_packet(&packet).unwrap();
            let sealed = sealed.to_vec();
            self.transport.inject(from, &sealed, &mut self.server);
        }
        self.server.receive_message(999_999, Channel::Control) == Some(vec![1, 2, 3].into())
    }
}
