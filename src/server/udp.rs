//! mingle's own server transport: renetcode's `NetcodeServer` over one UDP socket, in place of
//! bevy_renet's `NetcodeServerPlugin`.
//!
//! It differs from the stock transport in four ways: the socket's buffers are enlarged (a burst
//! of 1,024 connects fits); the datagrams handled per update are bounded, in total and per
//! source address, so a flood cannot stretch a frame; every datagram's netcode prefix is checked
//! by [`netcode_guard`](super::netcode_guard) before renetcode reads it, and every decrypted
//! packet by [`renet_guard`](super::renet_guard) (with a per-client slice ledger) before renet
//! does; and both decoders run inside [`isolate`], so a packet that would still crash either
//! disconnects its sender and nobody else notices. Nothing here logs per datagram: rejections
//! are counted by cause ([`ReceiveCounts`]) and summarised by the caller.

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
use crate::protocol::PROTOCOL_ID;

/// Datagrams one update reads at most; the rest wait in the socket buffer for the next update.
pub const MAX_DATAGRAMS_PER_UPDATE: usize = 16_384;
/// Datagrams one source address may have handled per update; more are read and dropped.
pub const MAX_DATAGRAMS_PER_ADDRESS: u32 = 64;

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

/// The UDP socket and netcode server, as a resource.
#[derive(Resource)]
pub struct ServerTransport {
    netcode: NetcodeServer,
    outlet: Outlet,
    buffer: Box<[u8; NETCODE_MAX_PACKET_BYTES]>,
    per_address: FxHashMap<SocketAddr, u32>,
    /// Running totals of every receive pass.
    pub totals: ReceiveCounts,
}

/// Where netcode's results go: the socket, the clients to drop, what was written, and what is
/// known of each connected client (its address, its slice ledger).
struct Outlet {
    socket: UdpSocket,
    offenders: Vec<u64>,
    sent: (u64, u64),
    connected: FxHashMap<SocketAddr, u64>,
    ledgers: FxHashMap<u64, SliceLedger>,
}

impl ServerTransport {
    /// A transport over `socket`, accepting connect tokens for `public_addr`.
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
        let netcode = NetcodeServer::new(ServerConfig {
            current_time,
            max_clients,
            protocol_id: PROTOCOL_ID,
            public_addresses: vec![public_addr],
            authentication,
        });
        Ok(ServerTransport {
            netcode,
            outlet: Outlet {
                socket,
                offenders: Vec::new(),
                sent: (0, 0),
                connected: FxHashMap::default(),
                ledgers: FxHashMap::default(),
            },
            buffer: Box::new([0; NETCODE_MAX_PACKET_BYTES]),
            per_address: FxHashMap::default(),
            totals: ReceiveCounts::default(),
        })
    }

    /// The connect token's user data of a connected client.
    pub fn user_data(&self, client_id: u64) -> Option<[u8; 256]> {
        self.netcode.user_data(client_id)
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.outlet.socket.local_addr()
    }

    /// Advances netcode by `dt`, reads a bounded number of datagrams, and feeds renet.
    pub fn receive(&mut self, dt: Duration, server: &mut RenetServer) -> ReceiveCounts {
        let mut counts = ReceiveCounts::default();
        self.netcode.update(dt);
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

    /// The connected client sending from `addr`, if any.
    pub fn client_at(&self, addr: SocketAddr) -> Option<u64> {
        self.outlet.connected.get(&addr).copied()
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
        let datagram = &mut self.buffer[..len];
        if let Err(fault) = netcode_guard::check_datagram(datagram, PROTOCOL_ID) {
            debug!("datagram from {addr} refused: {fault}");
            counts.malformed += 1;
            return;
        }
        let sender = self.outlet.connected.get(&addr).copied();
        let is_payload = datagram[0] & 0x0f == PAYLOAD_PACKET;
        let netcode = &mut self.netcode;
        match isolate(|| netcode.process_packet(addr, datagram)) {
            Ok(result) => {
                if sender.is_some() && is_payload && matches!(result, ServerResult::None) {
                    counts.netcode_rejected += 1;
                }
                self.outlet.handle(result, server, counts);
            }
            Err(_) => {
                counts.netcode_panics += 1;
                if let Some(client_id) = sender {
                    self.outlet.offenders.push(client_id);
                }
            }
        }
    }

    /// After a receive pass: netcode's per-client timers, then every disconnect asked for.
    fn settle(&mut self, server: &mut RenetServer, counts: &mut ReceiveCounts) {
        for client_id in self.netcode.clients_id() {
            let result = self.netcode.update_client(client_id);
            self.outlet.handle(result, server, counts);
        }
        let mut leaving = server.disconnections_id();
        leaving.append(&mut self.outlet.offenders);
        for client_id in leaving {
            if !self.netcode.is_client_connected(client_id) {
                // Already gone from netcode; make sure renet forgets it too.
                if server.is_connected(client_id) {
                    server.remove_connection(client_id);
                }
                continue;
            }
            let result = self.netcode.disconnect(client_id);
            self.outlet.handle(result, server, counts);
        }
    }

    /// Datagrams and bytes written so far.
    pub fn sent(&self) -> (u64, u64) {
        self.outlet.sent
    }

    /// Encrypts and writes every packet renet has queued.
    pub fn send(&mut self, server: &mut RenetServer) {
        for client_id in server.clients_id() {
            let Ok(packets) = server.get_packets_to_send(client_id) else {
                continue;
            };
            for packet in packets {
                match self.netcode.generate_payload_packet(client_id, &packet) {
                    Ok((addr, payload)) => {
                        self.outlet.sent.0 += 1;
                        self.outlet.sent.1 += payload.len() as u64;
                        if let Err(e) = self.outlet.socket.send_to(payload, addr) {
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
        for client_id in self.netcode.clients_id() {
            let result = self.netcode.disconnect(client_id);
            self.outlet.handle(result, server, &mut counts);
        }
    }
}

/// netcode's packet type of an encrypted payload (the low nibble of the prefix).
const PAYLOAD_PACKET: u8 = 5;

impl Outlet {
    fn handle(
        &mut self,
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
                let admitted = renet_guard::check(payload).and_then(|slice| match slice {
                    Some(slice) => self.ledgers.entry(client_id).or_default().admit(slice),
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
                server.add_connection(client_id);
                self.connected.insert(addr, client_id);
                send(payload, addr);
            }
            ServerResult::ClientDisconnected {
                client_id,
                addr,
                payload,
            } => {
                server.remove_connection(client_id);
                self.connected.remove(&addr);
                self.ledgers.remove(&client_id);
                if let Some(payload) = payload {
                    send(payload, addr);
                }
            }
        }
    }
}
