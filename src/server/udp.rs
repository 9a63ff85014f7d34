//! mingle's own server transport: renetcode `NetcodeServer` shards behind one UDP socket, in
//! place of bevy_renet's `NetcodeServerPlugin`.
//!
//! **Shards.** One `NetcodeServer` holds at most 1,024 clients and scans all its slots (~2.5 KB
//! each) for every datagram, every per-client update and every packet it writes. mingle runs
//! several small ones ([`SHARD_CLIENTS`] slots each) sharing key, protocol id and public
//! address, so connect tokens are the same whatever shard serves them. A connected client's
//! datagrams go to its shard through a hash map by address; a datagram from an unknown address
//! (a handshake) goes to a shard chosen by a hash of the address, or the next one with room, so
//! a handshake's request and response meet the same shard without any pending state a flood
//! could fill. One client id is served by one shard at a time: a second connection with an id
//! in use elsewhere is disconnected at once, as netcode does within one server.
//!
//! **Packet budget.** renet and netcode would write to every client on every update (acks,
//! keep-alives). Here a client is written to when renet holds a message for it, when it sent
//! data that is owed an ack (at most every [`ACK_PACE_SECS`]), and for netcode's keep-alive and
//! timeout check every [`KEEPALIVE_SECS`] (its clients time out after 15 s of silence).
//!
//! The transport also differs from the stock one in four ways: the socket's buffers are enlarged (a burst
//! of 1,024 connects fits); the datagrams handled per update are bounded, in total and per
//! source address, so a flood cannot stretch a frame; every datagram's netcode prefix is checked
//! by [`netcode_guard`](super::netcode_guard) before renetcode reads it, and every decrypted
//! packet by [`renet_guard`](super::renet_guard) (with a per-client slice ledger) before renet
//! does; and both decoders run inside [`isolate`], so a packet that would still crash either
//! disconnects its sender and nobody else notices. Nothing here logs per datagram: rejections
//! are counted by cause ([`ReceiveCounts`]) and summarised by the caller.

use std::hash::BuildHasher;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, SystemTime};

use bevy::log::{debug, warn};
use bevy::prelude::Resource;
use bevy_renet::RenetServer;
use renetcode::{
    NETCODE_MAX_PACKET_BYTES, NetcodeServer, ServerAuthentication, ServerConfig, ServerResult,
};
use rustc_hash::FxHashMap;

use super::netcode_guard::{self, isolate};
use super::renet_guard::{self, SliceLedger, SliceVerdict};
use crate::protocol::{Channel, PROTOCOL_ID, RELIABLE_MEMORY_BYTES};

/// Datagrams one update reads at most; the rest wait in the socket buffer for the next update.
pub const MAX_DATAGRAMS_PER_UPDATE: usize = 16_384;
/// Datagrams one source address may have handled per update; more are read and dropped.
pub const MAX_DATAGRAMS_PER_ADDRESS: u32 = 64;
/// Client slots of one netcode shard. Small enough that renetcode's slot scans cost little
/// (LOADTEST.md has the measurements), large enough that shards stay few.
pub const SHARD_CLIENTS: usize = 128;
/// Extra slots per shard beyond its share, so a shard chosen by address hash rarely fills
/// before the server does.
const SHARD_HEADROOM: usize = 32;
/// Least time between two ack-only writes to one client, seconds.
pub const ACK_PACE_SECS: f64 = 0.25;
/// Time between two netcode updates of one client (keep-alive, timeout check), seconds. A
/// client times out after 15 s without a packet; three keep-alives fit in that.
pub const KEEPALIVE_SECS: f64 = 3.0;

/// What one receive pass saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveCounts {
    /// Datagrams read from the socket.
    pub datagrams: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Datagrams dropped because their address exceeded its share of the update.
    pub flood_dropped: u64,
    /// Datagrams refused by their netcode prefix before renetcode read them.
    pub malformed: u64,
    /// Payload datagrams from a connected client's address that netcode refused (wrong MAC,
    /// replayed sequence).
    pub netcode_rejected: u64,
    /// Panics caught inside renetcode (the sender, if connected, is disconnected).
    pub netcode_panics: u64,
    /// Packets refused by the renet guard or its slice ledger (the sender is disconnected).
    pub guarded: u64,
    /// Slices dropped for a message id the slice ledger had already forgotten.
    pub stale_slices: u64,
    /// Panics caught inside renet (the sender is disconnected).
    pub renet_panics: u64,
}

impl std::ops::AddAssign for ReceiveCounts {
    fn add_assign(&mut self, c: ReceiveCounts) {
        self.datagrams += c.datagrams;
        self.bytes += c.bytes;
        self.flood_dropped += c.flood_dropped;
        self.malformed += c.malformed;
        self.netcode_rejected += c.netcode_rejected;
        self.netcode_panics += c.netcode_panics;
        self.guarded += c.guarded;
        self.stale_slices += c.stale_slices;
        self.renet_panics += c.renet_panics;
    }
}

impl ReceiveCounts {
    /// Datagrams and packets refused, all causes together.
    pub fn rejected(&self) -> u64 {
        self.flood_dropped
            + self.malformed
            + self.netcode_rejected
            + self.netcode_panics
            + self.guarded
            + self.stale_slices
            + self.renet_panics
    }
}

/// The UDP socket and the netcode shards, as a resource.
#[derive(Resource)]
pub struct ServerTransport {
    shards: Vec<NetcodeServer>,
    outlet: Outlet,
    buffer: Box<[u8; NETCODE_MAX_PACKET_BYTES]>,
    per_address: FxHashMap<SocketAddr, u32>,
    /// Running totals of every receive pass.
    pub totals: ReceiveCounts,
}

/// What the transport knows of one connected client.
#[derive(Debug)]
struct Client {
    shard: usize,
    addr: SocketAddr,
    /// It sent data (not only acks) since its last write: an ack is owed.
    owes_ack: bool,
    last_write: f64,
    next_keepalive: f64,
    ledger: SliceLedger,
    /// The receive pass in which its packets last reached renet.
    delivered_in: u64,
    /// renet may hold messages for it, queued or not yet acknowledged: check at each send.
    holds_messages: bool,
}

/// Where netcode's results go: the socket, the clients to drop, what was written, and what is
/// known of each connected client.
struct Outlet {
    socket: UdpSocket,
    offenders: Vec<u64>,
    /// Connections that arrived with an id another shard already serves: (shard, id).
    duplicates: Vec<(usize, u64)>,
    sent: (u64, u64),
    connected: FxHashMap<SocketAddr, u64>,
    clients: FxHashMap<u64, Client>,
    /// Connected clients per shard.
    load: Vec<usize>,
    /// Clients whose packets reached renet in this receive pass (each once).
    delivered: Vec<u64>,
    /// Receive passes so far.
    pass: u64,
    /// Seconds since the transport started, advanced by each receive pass.
    now: f64,
}

impl ServerTransport {
    /// A transport over `socket` for up to `max_clients`, accepting connect tokens for
    /// `public_addr`.
    ///
    /// # Errors
    /// The socket cannot be made non-blocking.
    pub fn new(
        socket: UdpSocket,
        public_addr: SocketAddr,
        max_clients: usize,
        authentication: ServerAuthentication,
    ) -> std::io::Result<Self> {
        socket.set_nonblocking(true)?;
        let current_time = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let count = max_clients.div_ceil(SHARD_CLIENTS).max(1);
        let per_shard = match count {
            1 => max_clients.max(1),
            _ => (max_clients.div_ceil(count) + SHARD_HEADROOM).min(1024),
        };
        let shards = (0..count)
            .map(|_| {
                NetcodeServer::new(ServerConfig {
                    current_time,
                    max_clients: per_shard,
                    protocol_id: PROTOCOL_ID,
                    public_addresses: vec![public_addr],
                    authentication: match &authentication {
                        ServerAuthentication::Secure { private_key } => {
                            ServerAuthentication::Secure {
                                private_key: *private_key,
                            }
                        }
                        ServerAuthentication::Unsecure => ServerAuthentication::Unsecure,
                    },
                })
            })
            .collect();
        Ok(ServerTransport {
            shards,
            outlet: Outlet {
                socket,
                offenders: Vec::new(),
                duplicates: Vec::new(),
                sent: (0, 0),
                connected: FxHashMap::default(),
                clients: FxHashMap::default(),
                load: vec![0; count],
                delivered: Vec::new(),
                pass: 0,
                now: 0.0,
            },
            buffer: Box::new([0; NETCODE_MAX_PACKET_BYTES]),
            per_address: FxHashMap::default(),
            totals: ReceiveCounts::default(),
        })
    }

    /// Clients connected, all shards together.
    pub fn connected_clients(&self) -> usize {
        self.outlet.clients.len()
    }

    /// How many netcode shards serve the clients.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The connect token's user data of a connected client.
    pub fn user_data(&self, client_id: u64) -> Option<[u8; 256]> {
        let client = self.outlet.clients.get(&client_id)?;
        self.shards[client.shard].user_data(client_id)
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.outlet.socket.local_addr()
    }

    /// Advances netcode by `dt`, reads a bounded number of datagrams, and feeds renet.
    pub fn receive(&mut self, dt: Duration, server: &mut RenetServer) -> ReceiveCounts {
        let mut counts = ReceiveCounts::default();
        self.outlet.now += dt.as_secs_f64();
        self.outlet.delivered.clear();
        self.outlet.pass += 1;
        for shard in &mut self.shards {
            shard.update(dt);
        }
        self.per_address.clear();
        for _ in 0..MAX_DATAGRAMS_PER_UPDATE {
            let (len, addr) = match self.outlet.socket.recv_from(&mut self.buffer[..]) {
                Ok(got) => got,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // An ICMP "port unreachable" from a vanished client: nothing to read.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => continue,
                Err(e) => {
                    warn!("UDP receive failed: {e}");
                    break;
                }
            };
            counts.datagrams += 1;
            counts.bytes += len as u64;
            let seen = self.per_address.entry(addr).or_insert(0);
            *seen += 1;
            if *seen > MAX_DATAGRAMS_PER_ADDRESS {
                counts.flood_dropped += 1;
                continue;
            }
            self.process(addr, len, server, &mut counts);
        }
        self.settle(server, &mut counts);
        self.totals += counts;
        counts
    }

    /// Handles `datagram` as if it had just been read from `addr`, without the socket or the
    /// per-address budget: the receive path for in-process fuzzing. Call
    /// [`receive`](Self::receive) now and then to let disconnects take effect.
    pub fn inject(
        &mut self,
        addr: SocketAddr,
        datagram: &[u8],
        server: &mut RenetServer,
    ) -> ReceiveCounts {
        let len = datagram.len().min(NETCODE_MAX_PACKET_BYTES);
        self.buffer[..len].copy_from_slice(&datagram[..len]);
        let mut counts = ReceiveCounts {
            datagrams: 1,
            bytes: len as u64,
            ..ReceiveCounts::default()
        };
        self.process(addr, len, server, &mut counts);
        self.totals += counts;
        counts
    }

    /// Notes that renet now holds a message for `client_id`: the next send writes to it.
    pub fn mark_outbound(&mut self, client_id: u64) {
        if let Some(client) = self.outlet.clients.get_mut(&client_id) {
            client.holds_messages = true;
        }
    }

    /// Clients whose packets reached renet in the last receive pass, each once: only they can
    /// have new messages to read.
    pub fn delivered(&self) -> &[u64] {
        &self.outlet.delivered
    }

    /// The connected client sending from `addr`, if any.
    pub fn client_at(&self, addr: SocketAddr) -> Option<u64> {
        self.outlet.connected.get(&addr).copied()
    }

    /// The shard for a datagram from `addr`, and its sender if connected: the client's shard,
    /// or for an unknown address the one its hash picks, or the next with room.
    fn shard_for(&self, addr: SocketAddr) -> (usize, Option<u64>) {
        if let Some(&id) = self.outlet.connected.get(&addr)
            && let Some(client) = self.outlet.clients.get(&id)
        {
            return (client.shard, Some(id));
        }
        let n = self.shards.len();
        let home = (rustc_hash::FxBuildHasher.hash_one(addr) % n as u64) as usize;
        let shard = (0..n)
            .map(|k| (home + k) % n)
            .find(|&s| self.outlet.load[s] < self.shards[s].max_clients())
            .unwrap_or(home);
        (shard, None)
    }

    /// One datagram (in `self.buffer[..len]`) through the netcode guard, renetcode, the renet
    /// guard and renet.
    fn process(
        &mut self,
        addr: SocketAddr,
        len: usize,
        server: &mut RenetServer,
        counts: &mut ReceiveCounts,
    ) {
        if let Err(fault) = netcode_guard::check_datagram(&self.buffer[..len], PROTOCOL_ID) {
            debug!("datagram from {addr} refused: {fault}");
            counts.malformed += 1;
            return;
        }
        let (shard, sender) = self.shard_for(addr);
        let datagram = &mut self.buffer[..len];
        let is_payload = datagram[0] & 0x0f == PAYLOAD_PACKET;
        let netcode = &mut self.shards[shard];
        match isolate(|| netcode.process_packet(addr, datagram)) {
            Ok(result) => {
                if sender.is_some() && is_payload && matches!(result, ServerResult::None) {
                    counts.netcode_rejected += 1;
                }
                self.outlet.handle(shard, result, server, counts);
            }
            Err(_) => {
                counts.netcode_panics += 1;
                if let Some(client_id) = sender {
                    self.outlet.offenders.push(client_id);
                }
            }
        }
        self.drop_duplicates(server, counts);
    }

    /// Ends connections that arrived with an id another shard serves.
    fn drop_duplicates(&mut self, server: &mut RenetServer, counts: &mut ReceiveCounts) {
        while let Some((shard, client_id)) = self.outlet.duplicates.pop() {
            let result = self.shards[shard].disconnect(client_id);
            self.outlet.handle(shard, result, server, counts);
        }
    }

    /// After a receive pass: netcode's per-client timers (paced), then every disconnect asked
    /// for.
    fn settle(&mut self, server: &mut RenetServer, counts: &mut ReceiveCounts) {
        let now = self.outlet.now;
        let due: Vec<(usize, u64)> = self
            .outlet
            .clients
            .iter_mut()
            .filter(|(_, c)| c.next_keepalive <= now)
            .map(|(&id, c)| {
                c.next_keepalive = now + KEEPALIVE_SECS;
                (c.shard, id)
            })
            .collect();
        for (shard, client_id) in due {
            let result = self.shards[shard].update_client(client_id);
            self.outlet.handle(shard, result, server, counts);
        }
        let mut leaving = server.disconnections_id();
        leaving.append(&mut self.outlet.offenders);
        for client_id in leaving {
            let Some(shard) = self.outlet.clients.get(&client_id).map(|c| c.shard) else {
                // Already gone from netcode; make sure renet forgets it too.
                if server.is_connected(client_id) {
                    server.remove_connection(client_id);
                }
                continue;
            };
            let result = self.shards[shard].disconnect(client_id);
            self.outlet.handle(shard, result, server, counts);
        }
    }

    /// Datagrams and bytes written so far.
    pub fn sent(&self) -> (u64, u64) {
        self.outlet.sent
    }

    /// Encrypts and writes what renet has for each client that is due a write: one with a
    /// message queued or unacknowledged, or owed an ack (paced).
    pub fn send(&mut self, server: &mut RenetServer) {
        let now = self.outlet.now;
        let Outlet {
            clients,
            socket,
            sent,
            ..
        } = &mut self.outlet;
        for (&client_id, client) in clients.iter_mut() {
            // Only a client marked as sent to is asked: renet's per-client look-ups are the
            // costliest part of an idle client otherwise. It stays marked until renet holds
            // nothing unacknowledged for it (its messages are resent until acked).
            if client.holds_messages {
                client.holds_messages = [Channel::Control, Channel::Signal].iter().any(|&c| {
                    server.channel_available_memory(client_id, c) < RELIABLE_MEMORY_BYTES
                });
            }
            let holds_messages = client.holds_messages;
            let ack_due = client.owes_ack && now - client.last_write >= ACK_PACE_SECS;
            if !holds_messages && !ack_due {
                continue;
            }
            let Ok(packets) = server.get_packets_to_send(client_id) else {
                continue;
            };
            if packets.is_empty() {
                continue;
            }
            let owed = std::mem::take(&mut client.owes_ack);
            client.last_write = now;
            let shard = &mut self.shards[client.shard];
            for packet in packets {
                // renet adds an ack packet whenever acks are pending, and they stay pending
                // until the client acks the ack: unless the client sent reliable data, it is
                // not worth a datagram.
                if packet.first() == Some(&ACK_PACKET) && !owed {
                    continue;
                }
                match shard.generate_payload_packet(client_id, &packet) {
                    Ok((addr, payload)) => {
                        sent.0 += 1;
                        sent.1 += payload.len() as u64;
                        if let Err(e) = socket.send_to(payload, addr) {
                            debug!("send to client {client_id} ({addr}) failed: {e}");
                            break;
                        }
                    }
                    Err(e) => {
                        debug!("cannot encrypt for client {client_id}: {e}");
                        break;
                    }
                }
            }
        }
    }

    /// Disconnects every client at once (shutdown): each gets netcode's disconnect packets.
    pub fn disconnect_all(&mut self, server: &mut RenetServer) {
        let mut counts = ReceiveCounts::default();
        let all: Vec<(usize, u64)> = self
            .outlet
            .clients
            .iter()
            .map(|(&id, c)| (c.shard, id))
            .collect();
        for (shard, client_id) in all {
            let result = self.shards[shard].disconnect(client_id);
            self.outlet.handle(shard, result, server, &mut counts);
        }
    }
}

/// netcode's packet type of an encrypted payload (the low nibble of the prefix).
const PAYLOAD_PACKET: u8 = 5;
/// renet's packet type of an ack-only packet.
const ACK_PACKET: u8 = 4;

impl Outlet {
    fn handle(
        &mut self,
        shard: usize,
        result: ServerResult,
        server: &mut RenetServer,
        counts: &mut ReceiveCounts,
    ) {
        let (socket, offenders, sent) = (&self.socket, &mut self.offenders, &mut self.sent);
        let mut send = |packet: &[u8], addr: SocketAddr| {
            sent.0 += 1;
            sent.1 += packet.len() as u64;
            if let Err(e) = socket.send_to(packet, addr) {
                debug!("send to {addr} failed: {e}");
            }
        };
        match result {
            ServerResult::None => {}
            ServerResult::PacketToSend { payload, addr } => send(payload, addr),
            ServerResult::Payload { client_id, payload } => {
                if offenders.contains(&client_id) {
                    return;
                }
                let Some(client) = self.clients.get_mut(&client_id) else {
                    return;
                };
                let admitted = renet_guard::check(payload).and_then(|slice| match slice {
                    Some(slice) => client.ledger.admit(slice),
                    None => Ok(SliceVerdict::Pass),
                });
                match admitted {
                    Ok(SliceVerdict::Pass) => {}
                    Ok(SliceVerdict::Stale) => {
                        counts.stale_slices += 1;
                        return;
                    }
                    Err(fault) => {
                        debug!("client {client_id}: {fault}; disconnecting it");
                        counts.guarded += 1;
                        offenders.push(client_id);
                        return;
                    }
                }
                // renet packet types 0..=3 carry messages. Only reliable ones (0, 2) are owed an
                // ack: an unreliable position needs none (renet forgets unacked packets after
                // 3 s), and an ack-only packet is owed nothing, or both sides would ack each
                // other's acks forever.
                if let Some(&kind) = payload.first().filter(|&&t| t <= 3) {
                    if kind == 0 || kind == 2 {
                        client.owes_ack = true;
                    }
                    if client.delivered_in != self.pass {
                        client.delivered_in = self.pass;
                        self.delivered.push(client_id);
                    }
                }
                // Defence in depth: any panic renet still has in it ends this client, not the server.
                match isolate(|| server.process_packet_from(payload, client_id)) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => debug!("payload for unknown client {client_id}: {e}"),
                    Err(_) => {
                        debug!(
                            "renet panicked on a packet from client {client_id}; disconnecting it"
                        );
                        counts.renet_panics += 1;
                        offenders.push(client_id);
                    }
                }
            }
            ServerResult::ClientConnected {
                client_id,
                addr,
                payload,
                ..
            } => {
                if self.clients.contains_key(&client_id) {
                    // Another shard serves this id: netcode within one server refuses such a
                    // connection; across shards it is refused here.
                    self.duplicates.push((shard, client_id));
                    return;
                }
                server.add_connection(client_id);
                self.connected.insert(addr, client_id);
                self.load[shard] += 1;
                self.clients.insert(
                    client_id,
                    Client {
                        shard,
                        addr,
                        owes_ack: false,
                        last_write: self.now,
                        // Spread keep-alives over the interval.
                        next_keepalive: self.now + KEEPALIVE_SECS * (client_id % 97) as f64 / 97.0,
                        ledger: SliceLedger::default(),
                        delivered_in: 0,
                        holds_messages: false,
                    },
                );
                send(payload, addr);
            }
            ServerResult::ClientDisconnected {
                client_id,
                addr,
                payload,
            } => {
                // Only the connection at that address is gone (a refused duplicate leaves the
                // id's real connection alone).
                if self.clients.get(&client_id).is_some_and(|c| c.addr == addr) {
                    server.remove_connection(client_id);
                    self.connected.remove(&addr);
                    self.clients.remove(&client_id);
                    self.load[shard] -= 1;
                }
                if let Some(payload) = payload {
                    send(payload, addr);
                }
            }
        }
    }
}
