//! mingle's own server transport: renetcode's `NetcodeServer` over one UDP socket, in place of
//! bevy_renet's `NetcodeServerPlugin`.
//!
//! It differs from the stock transport in three ways: the socket's buffers are enlarged (a burst
//! of 1,024 connects fits); the datagrams handled per update are bounded, in total and per
//! source address, so a flood cannot stretch a frame; and every decrypted packet is checked by
//! [`renet_guard`](super::renet_guard) and handed to renet inside `catch_unwind`, so a packet
//! that would crash renet disconnects its sender and nobody else notices.

use std::net::{SocketAddr, UdpSocket};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, SystemTime};

use bevy::log::{debug, warn};
use bevy::prelude::Resource;
use bevy_renet::RenetServer;
use renetcode::{
    NETCODE_MAX_PACKET_BYTES, NetcodeServer, ServerAuthentication, ServerConfig, ServerResult,
};
use rustc_hash::FxHashMap;

use super::renet_guard;
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
    /// Packets refused by the guard (the sender is disconnected).
    pub guarded: u64,
    /// Panics caught inside renet (the sender is disconnected).
    pub renet_panics: u64,
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

/// Where netcode's results go: the socket, the clients to drop, and what was written.
struct Outlet {
    socket: UdpSocket,
    offenders: Vec<u64>,
    sent: (u64, u64),
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
            let result = self.netcode.process_packet(addr, &mut self.buffer[..len]);
            self.outlet.handle(result, server, &mut counts);
        }
        for client_id in self.netcode.clients_id() {
            let result = self.netcode.update_client(client_id);
            self.outlet.handle(result, server, &mut counts);
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
            self.outlet.handle(result, server, &mut counts);
        }
        add(&mut self.totals, counts);
        counts
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

fn add(total: &mut ReceiveCounts, c: ReceiveCounts) {
    total.datagrams += c.datagrams;
    total.bytes += c.bytes;
    total.flood_dropped += c.flood_dropped;
    total.guarded += c.guarded;
    total.renet_panics += c.renet_panics;
}

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
                if let Err(fault) = renet_guard::check(payload) {
                    warn!("client {client_id}: {fault}; disconnecting it");
                    counts.guarded += 1;
                    offenders.push(client_id);
                    return;
                }
                // Defence in depth: any panic renet still has in it ends this client, not the server.
                match catch_unwind(AssertUnwindSafe(|| {
                    server.process_packet_from(payload, client_id)
                })) {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => debug!("payload for unknown client {client_id}: {e}"),
                    Err(_) => {
                        warn!(
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
                send(payload, addr);
            }
            ServerResult::ClientDisconnected {
                client_id,
                addr,
                payload,
            } => {
                server.remove_connection(client_id);
                if let Some(payload) = payload {
                    send(payload, addr);
                }
            }
        }
    }
}
