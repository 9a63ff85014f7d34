//! ICE candidate gathering for the WebRTC links (feature `webrtc`): host, server-reflexive and
//! relayed candidates, all on the links' one shared UDP socket.
//!
//! - **host**: every up IPv4 interface (crate `if-addrs`), or only the socket's own address
//!   when it is bound to a specific one;
//! - **server-reflexive**: a STUN Binding request (RFC 8489, built and parsed with
//!   `stun-proto`) to each `stun:` server the mingle server handed out
//!   ([`MingleIceServers`](crate::client::MingleIceServers)), re-sent on a 250 ms, 500 ms, 1 s
//!   … schedule until answered;
//! - **relayed**: a TURN allocation (RFC 8656) on each `turn:` server over UDP, with the
//!   credentials of this client, through [`turn_client_proto::udp::TurnClientUdp`]. It
//!   refreshes the allocation, permissions and channel bindings on its own timers; the links
//!   send to a peer through it (channel data once bound, Send indications before), and
//!   datagrams from the TURN server are unwrapped here and fed to str0m as if they had arrived
//!   on the relayed address.
//!
//! Nothing here owns the socket: [`IceGatherer`] is sans-IO. It takes datagrams
//! ([`IceGatherer::handle_datagram`]) and time ([`IceGatherer::poll`]), and queues datagrams to
//! write ([`IceGatherer::drain_transmits`]); the link driver in `webrtc.rs` does the I/O.
//!
//! # Why `turn-client-proto` and `stun-proto`
//!
//! str0m accepts relayed candidates but has no TURN client and gathers nothing itself. Of the
//! maintained Rust TURN clients, `turn-client-proto` (0.7, MIT OR Apache-2.0, by the GStreamer
//! WebRTC authors) is sans-IO like str0m, so it shares our socket instead of opening its own,
//! and covers allocation, refresh, permissions, channel bindings and long-term-credential
//! authentication with few dependencies (`stun-proto`, `turn-types`, smallvec, tracing).
//! `stun-proto` (same authors, same licence) is already its dependency and builds the Binding
//! requests. `rice-proto` (a whole ICE agent) would duplicate str0m's; `webrtc-rs`'s `turn`
//! brings tokio and its own sockets; `turn-rs` is GPL and never an option.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use bevy::log::{debug, trace, warn};
use str0m::{Candidate, CandidateKind};
use stun_proto::types::TransportType;
use stun_proto::types::attribute::XorMappedAddress;
use stun_proto::types::message::{
    BINDING, Message, MessageClass, MessageWrite, MessageWriteExt, MessageWriteVec, TransactionId,
};
use turn_client_proto::api::{Transmit, TurnClientApi, TurnConfig, TurnEvent, TurnRecvRet};
use turn_client_proto::types::TurnCredentials;
use turn_client_proto::udp::TurnClientUdp;

use crate::protocol::IceServer;

/// Times a STUN Binding request is sent before the server is given up on.
const STUN_TRIES: u32 = 6;

/// How long a peer IP the TURN server refused is not asked for again.
const REFUSED_BACKOFF: Duration = Duration::from_secs(5);

/// Datagrams held per relay while permissions are being asked for.
const HELD_MAX: usize = 8;

/// One local interface address: a host candidate, and the subnet it reaches directly.
#[derive(Debug, Clone, Copy)]
struct HostAddr {
    addr: SocketAddr,
    prefix: u8,
}

/// A STUN Binding transaction in flight.
#[derive(Debug)]
struct StunQuery {
    server: SocketAddr,
    transaction: TransactionId,
    request: Vec<u8>,
    next_send: Instant,
    tries: u32,
}

/// One TURN allocation.
#[derive(Debug)]
struct TurnRelay {
    client: TurnClientUdp,
    server: SocketAddr,
    relayed: Option<SocketAddr>,
    /// Peer addresses a channel binding or permission was asked for.
    asked: HashSet<SocketAddr>,
    /// Peer IPs the server refused a permission for (e.g. coturn's `denied-peer-ip`), and
    /// until when not to ask again: ICE keeps checking every pair, and a refusal is final
    /// more often than not.
    refused: HashMap<IpAddr, Instant>,
    /// The latest datagram to each peer that waits for its permission (a few), sent when the
    /// permission is in place instead of waiting for ICE to re-send it.
    held: Vec<(SocketAddr, Vec<u8>)>,
    failed: bool,
}

/// What a datagram arriving on the shared socket turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// STUN/TURN control traffic, handled here.
    Consumed,
    /// Data a peer sent to our relayed address, unwrapped.
    Relayed {
        /// The peer's address as the TURN server saw it.
        peer: SocketAddr,
        /// Our relayed address (the str0m `destination`).
        relayed: SocketAddr,
        /// The unwrapped datagram.
        data: Vec<u8>,
    },
    /// Not from a STUN/TURN server: give it to the links, as received on this local address.
    Direct {
        /// The host candidate it most likely arrived on.
        destination: SocketAddr,
    },
}

/// Bytes that went through TURN relays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayCounts {
    /// Payload bytes sent to peers through a relay.
    pub sent: u64,
    /// Payload bytes received from peers through a relay.
    pub received: u64,
}

/// Gathers this client's candidates and wraps relayed traffic (see the module doc).
#[derive(Debug)]
pub struct IceGatherer {
    socket_addr: SocketAddr,
    hosts: Vec<HostAddr>,
    stun: Vec<StunQuery>,
    turn: Vec<TurnRelay>,
    candidates: Vec<Candidate>,
    fresh: Vec<Candidate>,
    out: Vec<(SocketAddr, Vec<u8>)>,
    epoch: Instant,
    counts: RelayCounts,
}

/// Whether `ip` lies in `net/prefix`.
fn in_subnet(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        _ => false,
    }
}

/// `host:port` of a `stun:` / `turn:` URL (RFC 7064 / 7065), resolved to IPv4; `None` for
/// other schemes, TCP/TLS transports, or names that do not resolve.
fn server_addr(url: &str, scheme: &str) -> Option<SocketAddr> {
    let rest = url.strip_prefix(scheme)?.strip_prefix(':')?;
    let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !query.is_empty() && query != "transport=udp" {
        return None;
    }
    let with_port = if hostport
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        hostport.to_owned()
    } else {
        format!("{hostport}:3478")
    };
    with_port.to_socket_addrs().ok()?.find(SocketAddr::is_ipv4)
}

impl IceGatherer {
    /// A gatherer for a socket bound to `socket_addr`. With an unspecified address, every up
    /// IPv4 interface is a host candidate (`fallback_ip` too, if no interface is found or it is
    /// not among them: the links' configured `host_ip`).
    pub fn new(socket_addr: SocketAddr, fallback_ip: IpAddr, interfaces: bool) -> Self {
        let port = socket_addr.port();
        let mut hosts = Vec::new();
        if socket_addr.ip().is_unspecified() {
            if interfaces {
                for iface in if_addrs::get_if_addrs().unwrap_or_default() {
                    if let if_addrs::IfAddr::V4(v4) = iface.addr {
                        hosts.push(HostAddr {
                            addr: SocketAddr::new(IpAddr::V4(v4.ip), port),
                            prefix: v4.prefixlen,
                        });
                    }
                }
            }
            if !hosts.iter().any(|h| h.addr.ip() == fallback_ip) {
                hosts.push(HostAddr {
                    addr: SocketAddr::new(fallback_ip, port),
                    prefix: if fallback_ip.is_loopback() { 8 } else { 32 },
                });
            }
        } else {
            hosts.push(HostAddr {
                addr: socket_addr,
                prefix: 32,
            });
        }
        let mut gatherer = IceGatherer {
            socket_addr,
            hosts,
            stun: Vec::new(),
            turn: Vec::new(),
            candidates: Vec::new(),
            fresh: Vec::new(),
            out: Vec::new(),
            epoch: Instant::now(),
            counts: RelayCounts::default(),
        };
        for host in gatherer.hosts.clone() {
            match Candidate::host(host.addr, "udp") {
                Ok(c) => gatherer.found(c),
                Err(e) => warn!("mingle ice: bad host candidate {}: {e}", host.addr),
            }
        }
        gatherer
    }

    /// The primary host address: the first non-loopback one, else the first.
    fn primary(&self) -> SocketAddr {
        self.hosts
            .iter()
            .find(|h| !h.addr.ip().is_loopback())
            .or(self.hosts.first())
            .map_or(self.socket_addr, |h| h.addr)
    }

    fn found(&mut self, c: Candidate) {
        if self
            .candidates
            .iter()
            .any(|k| k.addr() == c.addr() && k.kind() == c.kind())
        {
            return;
        }
        debug!("mingle ice: local candidate {}", c.to_sdp_string());
        self.candidates.push(c.clone());
        self.fresh.push(c);
    }

    fn now(&self, now: Instant) -> stun_proto::Instant {
        stun_proto::Instant::from_nanos(now.duration_since(self.epoch).as_nanos() as i64)
    }

    /// Starts gathering with these servers (the latest `IceServers`). Servers already in use
    /// are kept: an allocation keeps the credentials it was made with until it is refreshed
    /// away, so renewed credentials only matter for new allocations.
    pub fn configure(&mut self, servers: &[IceServer], now: Instant) {
        for server in servers {
            for url in &server.urls {
                if let Some(addr) = server_addr(url, "stun") {
                    self.start_stun(addr, now);
                } else if let Some(addr) = server_addr(url, "turn") {
                    if server.username.is_empty() {
                        warn!("mingle ice: {url} without credentials, skipped");
                        continue;
                    }
                    self.start_turn(addr, &server.username, &server.credential, now);
                } else {
                    debug!("mingle ice: {url} not usable (only stun:/turn: over UDP, IPv4)");
                }
            }
        }
    }

    fn start_stun(&mut self, server: SocketAddr, now: Instant) {
        let have_srflx = self
            .candidates
            .iter()
            .any(|c| c.kind() == CandidateKind::ServerReflexive);
        if have_srflx || self.stun.iter().any(|q| q.server == server) {
            return;
        }
        let request = Message::builder_request(BINDING, MessageWriteVec::new());
        let transaction = request.transaction_id();
        self.stun.push(StunQuery {
            server,
            transaction,
            request: request.finish(),
            next_send: now,
            tries: 0,
        });
    }

    fn start_turn(&mut self, server: SocketAddr, user: &str, pass: &str, now: Instant) {
        if self.turn.iter().any(|t| t.server == server && !t.failed) {
            return;
        }
        self.turn.retain(|t| t.server != server);
        let config = TurnConfig::new(TurnCredentials::new(user, pass));
        let client = TurnClientUdp::allocate(self.primary(), server, config);
        self.turn.push(TurnRelay {
            client,
            server,
            relayed: None,
            asked: HashSet::new(),
            refused: HashMap::new(),
            held: Vec::new(),
            failed: false,
        });
        // Also a server-reflexive candidate from the same server, if no STUN URL gave one.
        self.start_stun(server, now);
    }

    /// Every local candidate found so far.
    pub fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }

    /// Candidates found since the last call (to add to existing links and trickle).
    pub fn take_fresh(&mut self) -> Vec<Candidate> {
        std::mem::take(&mut self.fresh)
    }

    /// Whether `addr` is one of our relayed addresses.
    pub fn is_relayed(&self, addr: SocketAddr) -> bool {
        self.turn.iter().any(|t| t.relayed == Some(addr))
    }

    /// Bytes relayed so far.
    pub fn relay_counts(&self) -> RelayCounts {
        self.counts
    }

    /// The host candidate a datagram from `source` most likely arrived on: the one whose
    /// subnet holds `source`, else the primary one (traffic through a NAT or router).
    pub fn destination_for(&self, source: SocketAddr) -> SocketAddr {
        if source.ip().is_loopback()
            && let Some(h) = self.hosts.iter().find(|h| h.addr.ip().is_loopback())
        {
            return h.addr;
        }
        self.hosts
            .iter()
            .find(|h| !h.addr.ip().is_loopback() && in_subnet(source.ip(), h.addr.ip(), h.prefix))
            .map_or_else(|| self.primary(), |h| h.addr)
    }

    /// Classifies and, for STUN/TURN traffic, handles a datagram read from the shared socket.
    pub fn handle_datagram(&mut self, source: SocketAddr, data: &[u8], now: Instant) -> Incoming {
        if let Some(i) = self.stun.iter().position(|q| q.server == source)
            && let Ok(msg) = Message::from_bytes(data)
            && msg.transaction_id() == self.stun[i].transaction
        {
            if msg.has_class(MessageClass::Success)
                && msg.has_method(BINDING)
                && let Ok(mapped) = msg.attribute::<XorMappedAddress>()
            {
                let addr = mapped.addr(msg.transaction_id());
                let base = self.primary();
                self.stun.remove(i);
                if let Ok(c) = Candidate::server_reflexive(addr, base, "udp") {
                    self.found(c);
                }
            }
            return Incoming::Consumed;
        }
        let t_now = self.now(now);
        for relay in self.turn.iter_mut().filter(|t| t.server == source) {
            let local = relay.client.local_addr();
            let transmit = Transmit::new(data, TransportType::Udp, source, local);
            match relay.client.recv(transmit, t_now) {
                TurnRecvRet::Handled => return Incoming::Consumed,
                TurnRecvRet::PeerData(peer_data) => {
                    let Some(relayed) = relay.relayed else {
                        return Incoming::Consumed;
                    };
                    self.counts.received += peer_data.data().len() as u64;
                    return Incoming::Relayed {
                        peer: peer_data.peer,
                        relayed,
                        data: peer_data.data().to_vec(),
                    };
                }
                TurnRecvRet::PeerIcmp { .. } => return Incoming::Consumed,
                TurnRecvRet::Ignored(_) => {}
            }
        }
        Incoming::Direct {
            destination: self.destination_for(source),
        }
    }

    /// Sends `data` to `peer` through the relay whose address is `relayed`. The first datagram
    /// to a new peer asks for a channel binding (which installs the permission) and is held
    /// until the permission is in place (the latest one per peer; ICE re-sends its checks
    /// anyway).
    pub fn send_relayed(
        &mut self,
        relayed: SocketAddr,
        peer: SocketAddr,
        data: &[u8],
        now: Instant,
    ) {
        let t_now = self.now(now);
        let Some(relay) = self.turn.iter_mut().find(|t| t.relayed == Some(relayed)) else {
            return;
        };
        if relay
            .refused
            .get(&peer.ip())
            .is_some_and(|until| now < *until)
        {
            return;
        }
        if !relay.client.have_permission(TransportType::Udp, peer.ip()) {
            trace!("mingle ice: relay send to {peer}: no permission yet, held");
            relay.held.retain(|(p, _)| *p != peer);
            if relay.held.len() < HELD_MAX {
                relay.held.push((peer, data.to_vec()));
            }
            if relay.asked.insert(peer)
                && relay
                    .client
                    .bind_channel(TransportType::Udp, peer, t_now)
                    .is_err()
            {
                let _ = relay
                    .client
                    .create_permission(TransportType::Udp, peer.ip(), t_now);
            }
            return;
        }
        if relay.asked.insert(peer) {
            // Permission from another port of the same peer: bind this address too.
            let _ = relay.client.bind_channel(TransportType::Udp, peer, t_now);
        }
        match relay.client.send_to(TransportType::Udp, peer, data, t_now) {
            Ok(Some(transmit)) => {
                let t = transmit.build();
                trace!(
                    "mingle ice: relay send to {peer}: {} bytes as {} to {}",
                    data.len(),
                    t.data.len(),
                    t.to
                );
                self.counts.sent += data.len() as u64;
                self.out.push((t.to, t.data));
            }
            Ok(None) => trace!("mingle ice: relay send to {peer}: nothing to send"),
            Err(e) => debug!("mingle ice: relay send to {peer} failed: {e}"),
        }
    }

    /// Advances timers (STUN retries, TURN refreshes), reads TURN events, queues what to send.
    pub fn poll(&mut self, now: Instant) {
        for q in &mut self.stun {
            if q.tries < STUN_TRIES && now >= q.next_send {
                self.out.push((q.server, q.request.clone()));
                q.tries += 1;
                q.next_send = now + Duration::from_millis(250) * 2u32.pow(q.tries - 1);
            }
        }
        self.stun
            .retain(|q| q.tries < STUN_TRIES || now < q.next_send);
        let t_now = self.now(now);
        let mut found = Vec::new();
        for relay in &mut self.turn {
            let _ = relay.client.poll(t_now);
            while let Some(t) = relay.client.poll_transmit(t_now) {
                self.out.push((t.to, t.data.as_ref().to_vec()));
            }
            while let Some(event) = relay.client.poll_event() {
                match event {
                    TurnEvent::AllocationCreated(TransportType::Udp, relayed) => {
                        relay.relayed = Some(relayed);
                        match Candidate::relayed(relayed, relay.client.local_addr(), "udp") {
                            Ok(c) => found.push(c),
                            Err(e) => warn!("mingle ice: bad relayed candidate {relayed}: {e}"),
                        }
                    }
                    TurnEvent::AllocationCreateFailed(_) => {
                        warn!("mingle ice: TURN allocation on {} failed", relay.server);
                        relay.failed = true;
                    }
                    TurnEvent::PermissionCreated(_, ip) => {
                        let (ready, waiting) =
                            relay.held.drain(..).partition(|(p, _)| p.ip() == ip);
                        relay.held = waiting;
                        for (peer, data) in ready {
                            if let Ok(Some(t)) =
                                relay.client.send_to(TransportType::Udp, peer, &data, t_now)
                            {
                                let t = t.build();
                                self.counts.sent += data.len() as u64;
                                self.out.push((t.to, t.data));
                            }
                        }
                    }
                    TurnEvent::PermissionCreateFailed(_, ip) => {
                        relay.held.retain(|(p, _)| p.ip() != ip);
                        debug!("mingle ice: {} refused a permission for {ip}", relay.server);
                        relay.asked.retain(|a| a.ip() != ip);
                        relay.refused.insert(ip, now + REFUSED_BACKOFF);
                    }
                    TurnEvent::ChannelCreateFailed(_, peer) => {
                        debug!("mingle ice: {} refused a channel to {peer}", relay.server);
                        relay.asked.retain(|a| a.ip() != peer.ip());
                        relay.held.retain(|(p, _)| p.ip() != peer.ip());
                        relay.refused.insert(peer.ip(), now + REFUSED_BACKOFF);
                    }
                    other => debug!("mingle ice: TURN {other:?}"),
                }
            }
            // Transmits caused by the events (none today, but cheap to check).
            while let Some(t) = relay.client.poll_transmit(t_now) {
                self.out.push((t.to, t.data.as_ref().to_vec()));
            }
        }
        for c in found {
            self.found(c);
        }
    }

    /// Datagrams to write: `(destination, bytes)`.
    pub fn drain_transmits(&mut self) -> std::vec::Drain<'_, (SocketAddr, Vec<u8>)> {
        self.out.drain(..)
    }

    /// Releases every allocation (a Refresh with lifetime 0), queuing what to send.
    pub fn release(&mut self, now: Instant) {
        let t_now = self.now(now);
        for relay in &mut self.turn {
            if relay.relayed.is_some() && relay.client.delete(t_now).is_ok() {
                while let Some(t) = relay.client.poll_transmit(t_now) {
                    self.out.push((t.to, t.data.as_ref().to_vec()));
                }
            }
        }
    }
}

/// The ICE candidate type names of RFC 8445: `host`, `srflx`, `prflx`, `relay`.
pub fn kind_name(kind: CandidateKind) -> &'static str {
    match kind {
        CandidateKind::Host => "host",
        CandidateKind::ServerReflexive => "srflx",
        CandidateKind::PeerReflexive => "prflx",
        CandidateKind::Relayed => "relay",
    }
}

/// The `a=candidate:` lines of an SDP, parsed.
pub fn sdp_candidates(sdp: &str) -> Vec<Candidate> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a="))
        .filter(|l| l.starts_with("candidate:"))
        .filter_map(|l| Candidate::from_sdp_string(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_to_addresses() {
        let a = |s: &str| Some(s.parse::<SocketAddr>().unwrap());
        assert_eq!(
            server_addr("stun:203.0.113.1:3478", "stun"),
            a("203.0.113.1:3478")
        );
        assert_eq!(
            server_addr("stun:203.0.113.1", "stun"),
            a("203.0.113.1:3478")
        );
        assert_eq!(
            server_addr("turn:203.0.113.1:3479?transport=udp", "turn"),
            a("203.0.113.1:3479")
        );
        assert_eq!(server_addr("turn:203.0.113.1?transport=tcp", "turn"), None);
        assert_eq!(server_addr("turns:203.0.113.1", "turn"), None);
        assert_eq!(server_addr("stun:203.0.113.1", "turn"), None);
    }

    #[test]
    fn subnets() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_subnet(ip("198.51.100.7"), ip("198.51.100.2"), 24));
        assert!(!in_subnet(ip("203.0.113.7"), ip("198.51.100.2"), 24));
        assert!(in_subnet(ip("10.1.2.3"), ip("192.0.2.1"), 0));
    }

    #[test]
    fn a_bound_address_is_the_only_host_candidate() {
        let g = IceGatherer::new(
            "198.51.100.2:4000".parse().unwrap(),
            "127.0.0.1".parse().unwrap(),
            true,
        );
        assert_eq!(g.candidates().len(), 1);
        assert_eq!(
            g.candidates()[0].addr(),
            "198.51.100.2:4000".parse().unwrap()
        );
        assert_eq!(
            g.destination_for("203.0.113.9:1".parse().unwrap()),
            "198.51.100.2:4000".parse().unwrap()
        );
    }
}
